"""One prediction worker process (started by worker_pool.WorkerPool as `python -m ecgdigit.prediction_worker
IN_FD OUT_FD`): builds its predictor once, then turns image ids into test.csv rows until told to stop.

A separate interpreter, not a multiprocessing child: it never re-imports the caller's __main__ (a
notebook run as a plain script, without a __main__ guard, would otherwise run itself again in every
worker), and a worker cut off at the deadline is a process to terminate, never a thread left running
inside torch/OpenCV at interpreter exit (that aborted the run with SIGABRT, rc 134).

Messages (pickled over two pipes): in: setup dict, predictor (PredictorSpec or a picklable callable),
then (image_id, [(lead, fs, number_of_rows), ...]) per image and None to stop; out: ("ready",
warnings, error, strict) once, then ("result", image_id, rows | None, failure | None, seconds,
is_fallback) per image. The parent's end closing (it finished or was killed) ends the worker.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from multiprocessing.connection import Connection


def _limit_threads(threads: int) -> None:
    """Before torch/OpenCV start their pools: n workers x all cores each would oversubscribe."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import cv2  # here: after the variables above, which numpy/OpenCV read when first imported

    cv2.setNumThreads(threads)


def _torch_threads(threads: int) -> None:
    if "torch" in sys.modules:  # only a pipeline predictor imported it
        import torch  # already loaded: this costs nothing, and a zeros worker never loads torch

        torch.set_num_threads(threads)


def _rows(digitized, leads) -> dict:
    from .config import LEADS  # after _limit_threads, as in serve()
    from .digitized import lead_rows

    # a lead test.csv names but the kit does not know (read tolerantly) keeps the fallback
    return {lead: lead_rows(digitized, lead, int(fs), int(n)) for lead, fs, n in leads if lead in LEADS}


def serve(conn_in: Connection, conn_out: Connection) -> int:
    setup = conn_in.recv()
    sys.path[:] = setup["sys_path"]  # before the predictor is unpickled: its module may live there
    logging.basicConfig(level=setup["log_level"],
                        format=f"%(asctime)s %(levelname)s worker{setup['index']} %(name)s: %(message)s")
    # the parent logs each stage left classical once, for all workers
    logging.getLogger("ecgdigit.models.stage_loading").setLevel(logging.ERROR)
    _limit_threads(setup["threads"])
    # imported here, not at the top: numpy/OpenCV (and torch) size their thread pools when first
    # imported, so they must come after _limit_threads
    from .io.competition_files import CompetitionFolder
    from .models.stage_loading import StageLoadError
    from .predictor_spec import as_predictor, is_factory

    predictor = conn_in.recv()
    try:
        loaded = predictor.load() if is_factory(predictor) else None
    except Exception as e:
        conn_out.send(("ready", [], f"{type(e).__name__}: {e}", isinstance(e, StageLoadError)))
        return 1
    warnings = loaded.warnings if loaded is not None else []
    predict = loaded.predictor.predict if loaded is not None else as_predictor(predictor).predict
    _torch_threads(setup["threads"])
    conn_out.send(("ready", warnings, None, False))

    folder = CompetitionFolder(setup["root"])
    while True:
        try:
            task = conn_in.recv()
        except EOFError:  # the parent is gone
            return 0
        if task is None:
            return 0
        image_id, leads = task
        t0 = time.monotonic()
        try:
            image = folder.test_image(image_id)
        except Exception as e:
            conn_out.send(("result", image_id, None, f"unreadable image: {e}", 0.0, False))
            continue
        try:
            digitized = predict(image)
            rows, failure, fallback = _rows(digitized, leads), None, bool(digitized.is_fallback)
        except Exception as e:  # this image only
            rows, failure, fallback = None, f"predictor error: {e!r}", False
        conn_out.send(("result", image_id, rows, failure, time.monotonic() - t0, fallback))


def main(argv: list[str]) -> int:
    conn_in = Connection(int(argv[1]), writable=False)
    conn_out = Connection(int(argv[2]), readable=False)
    try:
        return serve(conn_in, conn_out)
    except (BrokenPipeError, EOFError, ConnectionResetError):  # the parent is gone: nothing to report to
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
