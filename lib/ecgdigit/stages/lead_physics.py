"""What ECG physics gives: the six limb leads are two degrees of freedom (Einthoven/Goldberger).

I + III = II and aVR + aVL + aVF = 0. In each 2.5 s window the printed limb leads plus the rhythm
strip's lead II over-determine (I, II); a weighted least-squares fit and projection lowers reading
noise in every one of them.
"""
from __future__ import annotations

import numpy as np

from ..config import LEADS, SHORT_LEAD_S, lead_column
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
    """Project the limb leads of each 2.5 s window onto the Einthoven/Goldberger subspace."""
    weights = {**LEAD_WEIGHTS, **(weights or {})}
    sig = d.signals.copy()
    n = sig.shape[0]
    for col in range(4):
        # a simultaneous page has every limb lead in every window (printed in the first, estimated after)
        printed = [lead for lead in LIMB_BASIS if lead != "II" and (d.simultaneous_columns or lead_column(lead) == col)]
        if not printed:
            continue
        leads = printed + ["II"]
        a = int(round(col * SHORT_LEAD_S * d.fs))
        b = min(n, int(round((col + 1) * SHORT_LEAD_S * d.fs)))
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
