"""The one JSON-lines reader behind replay, leak traces and the probe followers."""

from jupyter_gpu_panel.jsonl import parse_lines, read_jsonl


def test_skips_blank_cut_and_non_object_lines(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_bytes(b'{"i": 0}\n\n[1, 2]\n"text"\n{"i": 1}\n{"i": 2, "allocat')  # a live file's torn tail
    assert read_jsonl(p) == [{"i": 0}, {"i": 1}]


def test_first_lines_only(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text("".join(f'{{"i": {i}}}\n' for i in range(10)))
    assert [r["i"] for r in read_jsonl(p, max_lines=3)] == [0, 1, 2]
    assert len(read_jsonl(p)) == 10


def test_bytes_and_text_lines():
    assert list(parse_lines([b'{"a": 1}', ' {"b": 2} \n'])) == [{"a": 1}, {"b": 2}]
