"""`nst compare`: source frames above the stylized frames of an output folder (no TensorFlow).

The output folder is made with OutputFolder from a tiny image sequence, as a run would leave it."""

import sys

import numpy as np
from typer.testing import CliRunner

from nst_plugin.cli import app
from nst_plugin.compare import band_height, pick_frames
from nst_plugin.images import load_image, save_image

runner = CliRunner()
W, H = 40, 30


def nst(*args):
    return runner.invoke(app, [str(a) for a in args])


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def _sequence(folder, count=5):
    rng = np.random.default_rng(7)
    folder.mkdir()
    frames = [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(count)]
    for n, frame in enumerate(frames, start=1):
        save_image(folder / f"{n:04d}.png", frame)
    return frames


def _output(tmp_path, done=(1, 3, 5)):
    from nst_plugin.config import make_config
    from nst_plugin.video import OutputFolder, open_source

    source = _sequence(tmp_path / "seq")
    folder = OutputFolder(tmp_path / "out", make_config(size=48), open_source(tmp_path / "seq"), [])
    stylized = {n: np.full((H, W, 3), 40 * n, np.uint8) for n in done}
    try:
        for n, image in stylized.items():
            folder.add(n, image, {"seconds": 1.0})
    finally:
        folder.close()
    return source, stylized


def test_compare_puts_source_frames_above_stylized_frames(tmp_path):
    source, stylized = _output(tmp_path)
    result = nst("compare", tmp_path / "seq", tmp_path / "out", "-o", tmp_path / "cmp.png", "--frames", "1,5")
    assert result.exit_code == 0, result.output
    assert "cmp.png" in result.stdout
    picture = load_image(tmp_path / "cmp.png")
    band = band_height(W)
    assert picture.shape == (2 * (band + H), 2 * W, 3)
    assert np.array_equal(picture[band:band + H], np.hstack([source[0], source[4]]))  # frames 1 and 5
    assert np.array_equal(picture[2 * band + H:], np.hstack([stylized[1], stylized[5]]))
    assert picture[:band].any() and picture[band + H:2 * band + H].any()  # the labels are written


def test_compare_picks_first_middle_last_done_frames_and_writes_jpeg(tmp_path):
    _output(tmp_path)
    assert pick_frames([1, 2, 3, 4, 5, 6, 7]) == [1, 4, 7] and pick_frames([2, 9]) == [2, 9]
    result = nst("compare", tmp_path / "seq", tmp_path / "out", "-o", tmp_path / "cmp.jpg")
    assert result.exit_code == 0, result.output
    assert "frames 1, 3, 5" in result.stdout
    assert load_image(tmp_path / "cmp.jpg").shape == (2 * (band_height(W) + H), 3 * W, 3)


def test_compare_errors_are_one_line(tmp_path):
    _output(tmp_path)
    (tmp_path / "plain").mkdir()
    for args in (["compare", tmp_path / "seq", tmp_path / "plain", "-o", tmp_path / "x.jpg"],  # no manifest
                 ["compare", tmp_path / "seq", tmp_path / "missing", "-o", tmp_path / "x.jpg"],
                 ["compare", tmp_path / "seq", tmp_path / "out", "-o", tmp_path / "x.jpg", "--frames", "2"],  # not done
                 ["compare", tmp_path / "seq", tmp_path / "out", "-o", tmp_path / "x.jpg", "--frames", "a"]):
        result = nst(*args)
        assert result.exit_code == 2, result.output  # a UserError
        assert len(error_lines(result)) == 1 and "Traceback" not in result.output, result.output
    assert "not an nst output folder" in error_lines(nst("compare", tmp_path / "seq", tmp_path / "plain", "-o",
                                                          tmp_path / "x.jpg"))[0]
    assert not (tmp_path / "x.jpg").exists()


def test_compare_does_not_import_tensorflow(tmp_path):
    import subprocess

    code = "import nst_plugin.compare, sys; assert 'tensorflow' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
