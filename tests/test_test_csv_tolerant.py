"""test.csv read tolerantly: every requested (id, lead) gets rows, each oddity is one problem line."""
from __future__ import annotations

import pandas as pd
import pytest

from ecgdigit import config
from ecgdigit.io.competition_files import CompetitionFileError, read_test_csv
from ecgdigit.io.test_csv_tolerant import read_test_csv_tolerant


def lines_for(image_id: str, fs: int) -> list[str]:
    return [f"{image_id},{lead},{fs},{config.number_of_rows(lead, fs)}" for lead in config.LEADS]


def write(tmp_path, lines: list[str], header: str = "id,lead,fs,number_of_rows"):
    path = tmp_path / "test.csv"
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def test_a_clean_file_reads_as_the_strict_reader_does(tmp_path):
    path = write(tmp_path, lines_for("0042", 500) + lines_for("7", 1025))
    df, problems = read_test_csv_tolerant(path)
    assert problems == []
    pd.testing.assert_frame_equal(df, read_test_csv(path))


def test_each_oddity_is_repaired_and_named(tmp_path):
    lines = lines_for("1", 500) + lines_for("2", 1025) + lines_for("3", 250)
    lines[3] = lines[3].replace(",aVR,", ",avr,")                    # line 5: lead in another case
    lines.append(lines[0])                                            # line 38: (1, I) again
    lines[12] = "2,I,1025,2563"                                       # line 14: one row more than 2562
    lines[24] = "3,I,,625"                                            # line 26: fs missing
    lines[25] = "3,II,250,"                                           # line 27: number_of_rows missing
    lines.append("4,V7,500,1250")                                     # line 39: unknown lead
    lines.append(",I,500,1250")                                       # line 40: empty id
    lines.append("5,I,abc,xyz")                                       # line 41: nothing usable
    path = write(tmp_path, lines)
    df, problems = read_test_csv_tolerant(path)
    text = "\n".join(problems)
    assert all(p.startswith(f"{path}: ") for p in problems)
    assert "lead read ignoring case: 1 line(s) 5 (e.g. 'avr' -> 'aVR')" in text
    assert "(id, lead) listed again, kept once (its first line): 1 line(s) 38" in text
    assert "number_of_rows differs from the expected count, written as given: 1 line(s) 14" in text
    assert "fs missing or not a positive integer, taken from the id's other lines or number_of_rows: " \
           "2 line(s) 26, 41" in text
    assert "number_of_rows missing or not a positive integer, derived from fs: 1 line(s) 27" in text
    assert "unknown lead, its rows written as fallback: 1 line(s) 39" in text
    assert "empty id or lead, line skipped: 1 line(s) 40" in text
    assert "neither fs nor number_of_rows usable, line skipped: 1 line(s) 41" in text

    got = {(r.id, r.lead): (r.fs, r.number_of_rows) for r in df.itertuples()}
    assert len(got) == len(df) == 3 * 12 + 1                         # every (id, lead) once, plus V7
    assert got[("1", "aVR")] == (500, 1250)
    assert got[("2", "I")] == (1025, 2563)                            # as given
    assert got[("3", "I")] == (250, 625)                              # fs from the id's other lines
    assert got[("3", "II")] == (250, 2500)                            # rows from fs
    assert got[("4", "V7")] == (500, 1250)
    assert list(df["id"].iloc[:12]) == ["1"] * 12                     # file order kept


def test_columns_ignoring_case_and_derived_when_missing(tmp_path):
    path = write(tmp_path, ["9,I,500", "9,II,500"], header=" ID,Lead,fs")
    df, problems = read_test_csv_tolerant(path)
    assert list(df["number_of_rows"]) == [1250, 5000]
    text = "\n".join(problems)
    assert "column name(s) read ignoring case/spaces" in text and "'number_of_rows' missing" in text


def test_ragged_line_and_several_fs(tmp_path):
    path = write(tmp_path, ["9,I,500,1250", "9,II,250,2500,extra", "9,V1,250,625"])
    df, problems = read_test_csv_tolerant(path)
    text = "\n".join(problems)
    assert "more fields than the header, skipped: 1 line(s)" in text
    assert "id with several fs values" in text and "9: [250, 500]" in text
    assert list(df["lead"]) == ["I", "V1"]


@pytest.mark.parametrize("content, words", [
    ("id,fs,number_of_rows\n1,500,1250\n", "no usable test.csv columns"),
    ("id,lead\n1,I\n", "no usable test.csv columns"),
    ("", "empty"),
    ("id,lead,fs,number_of_rows\n,I,500,1250\n", "no usable line"),
])
def test_unusable_files_are_one_clear_error(tmp_path, content, words):
    (tmp_path / "test.csv").write_text(content)
    with pytest.raises(CompetitionFileError, match=words) as err:
        read_test_csv_tolerant(tmp_path / "test.csv")
    assert str(tmp_path / "test.csv") in str(err.value)
