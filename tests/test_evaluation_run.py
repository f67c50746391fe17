"""``styletrans evaluate`` end to end on a tiny random network and loss network: the report
and all its files appear, the losses are the training loss, snapshots agree with the
recorded curve, ONNX files carry the same loss settings, and bad input fails cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from styletrans.cli import main
from styletrans.evaluation import equivalent_iterations, gatys_settings, load_model
from styletrans.evaluation.metrics import style_strength
from styletrans.export import export_onnx
from styletrans.models.checkpoint import load_transformer, write_checkpoint
from styletrans.models.transformer import TransformerConfig, TransformerNet
from tests.conftest import make_photo
from tests.test_evaluation_metrics import check_markdown_matches_json

COUNTS = [1, 2, 4]
# Style dominant enough that L-BFGS visibly lowers the loss from the content photo, and large enough
# that its gradients in 0-255 pixel units (the evaluation's, as neural-style's) are not below L-BFGS's tolerance.
TRAINING = {"loss_network": "random", "content_layers": {"relu3_3": 1.0},
            "style_layers": {"relu1_2": 1.0, "relu2_2": 1.0, "relu3_3": 1.0}, "content_weight": 1e4,
            "style_weight": 1e8, "tv_weight": 1e-2, "style_size": 48, "image_size": 32}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint trained (in name) on ``style.png``, and three 'photos', one unreadable."""
    root = tmp_path_factory.mktemp("evaluate")
    make_photo(48, 48, seed=42).save(root / "style.png")
    photos = root / "photos"
    (photos / "nested").mkdir(parents=True)
    make_photo(40, 30, seed=1).save(photos / "a.png")
    (photos / "b_broken.jpg").write_bytes(b"not a jpeg")
    make_photo(32, 40, seed=2).save(photos / "nested" / "c.jpg")
    torch.manual_seed(0)
    net = TransformerNet(TransformerConfig(base_channels=8, residual_blocks=1))
    write_checkpoint(root / "tiny.ckpt", net, "tiny", style_image=str(root / "style.png"), **TRAINING)
    return root


@pytest.fixture(scope="module")
def report_dir(workspace: Path) -> Path:
    out = workspace / "report"
    code = main(["evaluate", "--model", str(workspace / "tiny.ckpt"), "--content-dir", str(workspace / "photos"),
                 "--report-dir", str(out), "--size", "40", "--iterations", ",".join(map(str, COUNTS)), "--quiet",
                 "--yardstick-iterations", "4"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def report(report_dir: Path) -> dict:
    return json.loads((report_dir / "report.json").read_text())


def test_report_has_every_file(report_dir: Path, report: dict) -> None:
    assert [im["name"] for im in report["images"]] == ["a.png", "nested/c.jpg"]
    assert any("b_broken.jpg" in note for note in report["notes"])  # skipped, said so, the others evaluated
    expected = {"report.md", "report.json", "loss_curves.png", "panels/001_a.png", "panels/003_nested_c.png"}
    assert {p.relative_to(report_dir).as_posix() for p in report_dir.rglob("*") if p.is_file()} == expected
    for png in ("loss_curves.png", "panels/001_a.png"):
        with Image.open(report_dir / png) as image:
            assert image.width > image.height > 100
    markdown = (report_dir / "report.md").read_text()
    assert "![loss curves](loss_curves.png)" in markdown and "(panels/003_nested_c.png)" in markdown
    check_markdown_matches_json(markdown, report)


def test_curves_snapshots_and_equivalent_iterations_agree(report: dict) -> None:
    for image in report["images"]:
        curve, seconds = image["curve"], image["seconds"]
        assert len(curve) == len(seconds) == max(COUNTS) + 1
        assert seconds == sorted(seconds) and seconds[0] == 0
        assert curve[-1] < 0.7 * curve[0]  # the optimization really optimized (4 steps on a random VGG)
        # Each snapshot, scored on its own, is the loss the run recorded for that iteration count.
        for n in COUNTS:
            assert image["gatys"][str(n)]["total"] == pytest.approx(curve[n], rel=1e-4)
            assert image["gatys"][str(n)]["seconds"] == seconds[n]
        assert image["equivalent_iterations"] == equivalent_iterations(curve, image["fast"]["total"])
        similarity = image["similarity"]
        assert similarity["gatys_iterations"] == 4 and -1 <= similarity["ssim"] <= 1 and similarity["psnr"] > 0
        assert set(image["artifacts"]) == {"lattice", "dots", "edge_frame"}
        assert set(image["artifacts"]["edge_frame"]) == {"fast", "gatys"}  # against the photo: none of its own
        # The yardstick: photo, fast output and the Gatys default result under the defaults' loss.
        yardstick = image["yardstick"]
        assert set(yardstick) == {"photo", "fast", "gatys"} and yardstick["photo"]["content"] == 0
        assert yardstick["gatys"]["total"] < yardstick["photo"]["total"]  # the default run did optimize
        assert image["style_strength"] == style_strength(*(yardstick[k]["style"] for k in ("photo", "fast", "gatys")))
        assert image["content_ratio"] == pytest.approx(yardstick["fast"]["content"] / yardstick["gatys"]["content"])
        assert all(set(image["artifacts"][score]) == {"photo", "fast", "gatys"} for score in ("lattice", "dots"))
        assert all(0 <= value <= 1 for score in ("lattice", "dots") for value in image["artifacts"][score].values())
        assert all(0 <= value <= 255 for value in image["artifacts"]["edge_frame"].values())  # grey levels


def test_the_pan_is_measured_where_the_photo_is_wide_enough(report: dict) -> None:
    wide, narrow = report["images"]  # 40 and 32 px wide
    assert set(wide["pan"]) == {"fast_1px", "fast_4px", "photo_1px", "fast_noise", "photo_noise"}
    assert wide["pan"]["fast_1px"] > 0 and wide["pan"]["fast_noise"] > 0
    assert narrow["pan"] == {}
    assert report["summary"]["pan"]["fast_1px"] == wide["pan"]["fast_1px"]


def test_fast_loss_is_the_training_loss(workspace: Path, report: dict) -> None:
    """The model's output scores exactly what the training module would have computed."""
    from styletrans.images import load_image
    from styletrans.training.module import StyleTransferModule

    net, metadata = load_transformer(workspace / "tiny.ckpt")
    module = StyleTransferModule(style_image=str(workspace / "style.png"), transformer=metadata["transformer"],
                                 **{k: v for k, v in TRAINING.items()})
    module.transformer.load_state_dict(net.state_dict())
    module.prepare("cpu")
    content = load_image(workspace / "photos" / "a.png", 40)[None]
    with torch.no_grad():
        terms = module.compute_loss(content)
    assert report["images"][0]["fast"]["total"] == pytest.approx(float(terms.total), rel=1e-4)
    assert report["images"][0]["fast"]["style"] == pytest.approx(float(terms.style), rel=1e-4)


def test_an_existing_report_is_not_overwritten(workspace: Path, report_dir: Path, capsys) -> None:
    before = (report_dir / "report.json").read_bytes()
    code = main(["evaluate", "--model", str(workspace / "tiny.ckpt"), "--content-dir", str(workspace / "photos"),
                 "--report-dir", str(report_dir)])
    assert code == 2
    assert "already exists" in capsys.readouterr().err
    assert (report_dir / "report.json").read_bytes() == before


def test_onnx_model_carries_the_same_loss(workspace: Path, tmp_path: Path) -> None:
    net, metadata = load_transformer(workspace / "tiny.ckpt")
    onnx_path = export_onnx(net, tmp_path / "tiny.onnx", metadata=metadata)
    cpu = torch.device("cpu")
    from_onnx, from_ckpt = load_model(onnx_path, cpu), load_model(workspace / "tiny.ckpt", cpu)
    assert from_onnx.style_name == "tiny" and from_onnx.backend.name == "onnx"
    assert gatys_settings(from_onnx, 300) == gatys_settings(from_ckpt, 300)

    code = main(["evaluate", "--model", str(onnx_path), "--content-dir", str(workspace / "photos" / "nested"),
                 "--report-dir", str(tmp_path / "report"), "--size", "32", "--iterations", "1", "--quiet",
                 "--yardstick-iterations", "2"])
    assert code == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["model"]["runtime"].startswith("ONNX Runtime")
    assert report["loss"]["style_weight"] == TRAINING["style_weight"]


def test_a_model_without_training_settings_is_refused(tmp_path: Path, capsys) -> None:
    checkpoint = write_checkpoint(tmp_path / "bare.ckpt", TransformerNet(TransformerConfig(8, 1)), "bare")
    make_photo(32, 32).save(tmp_path / "photo.png")
    code = main(["evaluate", "--model", str(checkpoint), "--style", str(tmp_path / "photo.png"),
                 "--content-dir", str(tmp_path), "--report-dir", str(tmp_path / "out")])
    assert code == 2
    assert "lacks the training setting(s) loss_network" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("flags", "message"), [
    (["--iterations", "0,10"], "--iterations"),
    (["--size", "16"], "--size must be at least 32"),
    (["--limit", "0"], "--limit must be at least 1"),
])
def test_bad_arguments_fail_before_any_work(workspace: Path, tmp_path: Path, capsys, flags: list[str],
                                             message: str) -> None:
    code = main(["evaluate", "--model", str(workspace / "tiny.ckpt"), "--content-dir", str(workspace / "photos"),
                 "--report-dir", str(tmp_path / "out"), *flags])
    assert code == 2
    assert message in capsys.readouterr().err
