"""submission.csv: id expansion, fast writer (exactness, fallbacks, atomicity), reader, validator."""
import logging
import os

import numpy as np
import pandas as pd
import pytest

from ecgdigit import config
from ecgdigit.io import submission as S
from ecgdigit.io.submission import SubmissionError


def make_test(ids_fs=(("0042", 250), ("77", 256))):
    rows = [(i, lead, fs, config.number_of_rows(lead, fs)) for i, fs in ids_fs for lead in config.LEADS]
    return pd.DataFrame(rows, columns=["id", "lead", "fs", "number_of_rows"])


def make_predictions(test, seed=0):
    rng = np.random.default_rng(seed)
    preds = {}
    for r in test.itertuples():
        preds.setdefault(r.id, {})[r.lead] = rng.normal(0, 1.0, r.number_of_rows) * 10.0 ** rng.integers(-3, 3)
    return preds


def test_expected_ids_order_and_count():
    test = make_test()
    ids = S.expected_ids(test)
    assert len(ids) == test["number_of_rows"].sum() == len(set(ids))
    assert ids[0] == "0042_0_I" and ids[1] == "0042_1_I"
    n_i = config.number_of_rows("I", 250)
    assert ids[n_i - 1] == f"0042_{n_i - 1}_I" and ids[n_i] == "0042_0_II"
    assert ids[-1] == f"77_{config.number_of_rows('V6', 256) - 1}_V6"
    parts = S.split_ids(pd.Series(ids))
    assert parts["row"].max() == config.number_of_rows("II", 256) - 1
    assert set(parts["lead"]) == set(config.LEADS)


def test_write_roundtrip_exact_order_and_precision(tmp_path):
    test = make_test()
    preds = make_predictions(test)
    path = tmp_path / "submission.csv"
    rep = S.write_submission(test, preds, path)
    assert rep.n_rows == test["number_of_rows"].sum()
    assert rep.n_fallback_leads == 0 and rep.n_nonfinite_replaced == 0
    sub = S.read_submission(path)
    np.testing.assert_array_equal(sub["id"].to_numpy(), S.expected_ids(test))
    want = np.concatenate([preds[r.id][r.lead] for r in test.itertuples()])
    np.testing.assert_allclose(sub["value"].to_numpy(), want, rtol=0, atol=5e-7 + 1e-12)
    S.validate_submission(path, test)
    assert open(path, "rb").read(9) == b"id,value\n"
    assert not [p for p in os.listdir(tmp_path) if p != "submission.csv"]  # no temp file left


def test_value_formatting_edge_cases(tmp_path):
    test = make_test((("1", 250),))
    vals = np.array([0.0, -0.0, 1e-7, -4e-7, -6e-7, 123.4567891, -9.9999999, 1e13, -2.5e15, 5e11, 0.5])
    preds = {"1": {lead: np.resize(vals, n) for lead, n in zip(test["lead"], test["number_of_rows"])}}
    S.write_submission(test, preds, tmp_path / "s.csv")
    text = open(tmp_path / "s.csv").read().splitlines()
    assert text[1:4] == ["1_0_I,0.000000", "1_1_I,0.000000", "1_2_I,0.000000"]  # no "-0.000000"
    assert text[5] == "1_4_I,-0.000001"
    sub = S.read_submission(tmp_path / "s.csv")
    got = sub["value"].to_numpy()[: len(vals)]
    np.testing.assert_allclose(got, vals, rtol=1e-6, atol=5e-7 + 1e-12)  # huge values keep their meaning


def test_fallback_and_nonfinite(tmp_path, caplog):
    test = make_test()
    preds = make_predictions(test)
    del preds["77"]  # whole image missing: 12 leads
    del preds["0042"]["V2"]
    preds["0042"]["I"][[3, 5]] = [np.nan, np.inf]
    with caplog.at_level(logging.WARNING):
        rep = S.write_submission(test, preds, tmp_path / "s.csv", fallback_value=0.25)
    assert rep.n_fallback_leads == 13 and rep.n_nonfinite_replaced == 2
    assert "13" in caplog.text
    sub = S.read_submission(tmp_path / "s.csv").set_index("id")["value"]
    assert sub["0042_3_I"] == sub["0042_5_I"] == 0.25
    assert (sub[sub.index.str.startswith("77_")] == 0.25).all()
    assert (sub[sub.index.str.endswith("_V2") & sub.index.str.startswith("0042_")] == 0.25).all()
    S.validate_submission(tmp_path / "s.csv", test)


def test_wrong_length_is_error_and_leaves_old_file(tmp_path):
    test = make_test()
    preds = make_predictions(test)
    path = tmp_path / "submission.csv"
    path.write_text("old")
    preds["77"]["aVF"] = preds["77"]["aVF"][:-1]
    with pytest.raises(SubmissionError, match=r"77.*aVF.*exactly"):
        S.write_submission(test, preds, path)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["submission.csv"]


def test_chunked_writing_matches(tmp_path, monkeypatch):
    test = make_test((("a1", 500), ("b2", 250), ("c3", 1025)))
    preds = make_predictions(test, seed=2)
    S.write_submission(test, preds, tmp_path / "big.csv")
    monkeypatch.setattr(S, "CHUNK_ROWS", 1000)  # many flushes, blocks of several lengths
    S.write_submission(test, preds, tmp_path / "small.csv")
    assert (tmp_path / "big.csv").read_bytes() == (tmp_path / "small.csv").read_bytes()


def test_validate_reports_problems(tmp_path):
    test = make_test()
    S.write_submission(test, make_predictions(test), tmp_path / "s.csv")
    sub = S.read_submission(tmp_path / "s.csv")
    S.validate_submission(sub, test)
    bad = sub.drop(index=[10, 11, 12])
    with pytest.raises(SubmissionError, match="3 missing"):
        S.validate_submission(bad, test)
    bad = pd.concat([sub, sub.iloc[[0, 1]], pd.DataFrame({"id": ["9_0_I"], "value": [1.0]})])
    with pytest.raises(SubmissionError, match=r"2 duplicated.*1 unexpected"):
        S.validate_submission(bad, test)
    bad = sub.copy()
    bad.loc[5, "value"] = np.nan
    with pytest.raises(SubmissionError, match="1 non-finite"):
        S.validate_submission(bad, test)
    with pytest.raises(SubmissionError, match="columns"):
        S.validate_submission(sub.rename(columns={"value": "v"}), test)
    (tmp_path / "x.csv").write_text("id,value,extra\n1_0_I,1,2\n")
    with pytest.raises(SubmissionError, match="x.csv"):
        S.validate_submission(tmp_path / "x.csv", test)
    (tmp_path / "y.csv").write_text("id,value\n0042_0_I,abc\n")
    with pytest.raises(SubmissionError, match="non-numeric"):
        S.read_submission(tmp_path / "y.csv")


def _file_problems(tmp_path, test, sub: pd.DataFrame, chunk_rows: int) -> list[str]:
    from ecgdigit.io.submission_check import check_submission_file

    path = tmp_path / "f.csv"
    sub.to_csv(path, index=False)
    problems, n_rows, n_expected = check_submission_file(path, test, chunk_rows=chunk_rows)
    assert n_rows == len(sub) and n_expected == int(test["number_of_rows"].sum())
    return problems


@pytest.mark.parametrize("chunk_rows", [997, 1 << 20])  # chunk edges fall inside leads / one chunk
def test_file_check_streams_and_finds_every_problem(tmp_path, chunk_rows):
    test = make_test()
    S.write_submission(test, make_predictions(test), tmp_path / "s.csv")
    sub = S.read_submission(tmp_path / "s.csv")
    assert _file_problems(tmp_path, test, sub, chunk_rows) == []
    shuffled = sub.sample(frac=1.0, random_state=0)  # any order is valid, only slower to check
    assert _file_problems(tmp_path, test, shuffled, chunk_rows) == []

    bad = pd.concat([sub.drop(index=[10, 11, 12]), sub.iloc[[0, 5000]],
                     pd.DataFrame({"id": ["9_0_I", "0042_007_I", "0042_0_V7", "junk"], "value": 1.0})])
    bad.loc[bad["id"] == "77_3_V6", "value"] = np.inf
    problems = "; ".join(_file_problems(tmp_path, test, bad, chunk_rows))
    assert "2 duplicated id row(s)" in problems and "0042_0_I" in problems
    assert "3 missing id(s), e.g. ['0042_10_I', '0042_11_I', '0042_12_I']" in problems
    assert "4 unexpected id(s)" in problems and "0042_007_I" in problems  # the host merges on the text
    assert "1 non-finite or non-numeric value(s), e.g. ids ['77_3_V6']" in problems

    text = sub.astype({"value": str})
    text.loc[7, "value"] = "abc"
    assert "1 non-finite or non-numeric" in "; ".join(_file_problems(tmp_path, test, text, chunk_rows))


def test_validate_file_names_the_file_and_agrees_with_memory(tmp_path):
    test = make_test()
    S.write_submission(test, make_predictions(test), tmp_path / "s.csv")
    sub = S.read_submission(tmp_path / "s.csv")
    S.validate_submission(tmp_path / "s.csv", test)
    bad = pd.concat([sub.drop(index=[3]), sub.iloc[[9]]])
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(SubmissionError) as from_memory:
        S.validate_submission(bad, test)
    with pytest.raises(SubmissionError) as from_file:
        S.validate_submission(tmp_path / "bad.csv", test)
    assert str(from_file.value) == f"{tmp_path / 'bad.csv'}: {from_memory.value}"
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(SubmissionError, match="empty.csv: cannot parse"):
        S.validate_submission(tmp_path / "empty.csv", test)
