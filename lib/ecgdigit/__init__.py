"""ecgdigit: turn pictures of paper ECGs back into 12-lead signals (PhysioNet ECG digitization kit)."""
__version__ = "0.1.0"
