"""What ECG physics gives: the six limb leads are two degrees of freedom (Einthoven/Goldberger).

I + III = II and aVR + aVL + aVF = 0. Wherever some limb leads are printed beside lead II (on the
competition's page each 2.5 s column with the rhythm strip's lead II) they over-determine (I, II); a weighted least-squares fit and projection lowers reading
noise in every one of them.
"""
from __future__ import annotations

import numpy as np

from ..config import DURATION_S, LEADS
from ..digitized import Digitized

# each limb lead as a combination of (I, II)
LIMB_BASIS: dict[str, tuple[float, float]] = {
    "I": (1.0, 0.0),
    "II": (0.0, 1.0),
    "III": (-1.0, 1.0),
    "aVR": (-0.5, -0.5),
    "aVL": (1.0, -0.5),
    "aVF": (-0.5, 1.0),
}
# lead II is read from the 10 s rhythm strip, the longest and cleanest trace: trust it more
LEAD_WEIGHTS: dict[str, float] = {"II": 2.0}


def reconcile_limb_leads(d: Digitized, weights: dict[str, float] | None = None) -> Digitized:
    """Project the limb leads onto the Einthoven/Goldberger subspace wherever lead II and at least
    one other limb lead were printed together (each stretch between the limb leads' window edges)."""
    weights = {**LEAD_WEIGHTS, **(weights or {})}
    sig = d.signals.copy()
    n = sig.shape[0]
    windows = {lead: _present(d, lead) for lead in LIMB_BASIS}
    if windows["II"] is None:
        return d.replace_signals(sig)
    cuts = sorted({t for w in windows.values() if w is not None for t in w})
    for t0, t1 in zip(cuts[:-1], cuts[1:]):
        present = [lead for lead, w in windows.items() if w is not None and w[0] <= t0 and t1 <= w[1]]
        printed = [lead for lead in present if lead != "II"]
        if not printed or "II" not in present:
            continue
        leads = printed + ["II"]
        a = int(round(t0 * d.fs))
        b = min(n, int(round(t1 * d.fs)))
        A = np.array([LIMB_BASIS[lead] for lead in leads])  # (m, 2)
        w = np.array([weights.get(lead, 1.0) for lead in leads])
        Y = np.stack([sig[a:b, LEADS.index(lead)] for lead in leads], axis=0)  # (m, t)
        # weighted least squares for (I, II) at every sample at once
        Aw = A * w[:, None]
        coef = np.linalg.solve(A.T @ Aw, Aw.T @ Y)  # (2, t)
        fitted = A @ coef
        for i, lead in enumerate(printed):
            sig[a:b, LEADS.index(lead)] = fitted[i]
    return d.replace_signals(sig)


def _present(d: Digitized, lead: str) -> tuple[float, float] | None:
    """Where the lead holds a reading: its printed window; on a simultaneous page the short leads'
    estimates after their printed window count too (column_timing fills the whole record)."""
    window = d.printed_window(lead)
    if window is not None and d.simultaneous_columns:
        return 0.0, DURATION_S
    return window
