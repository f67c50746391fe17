"""Finding a model by name: the user's folders before the styles bundled in the package, only
files (never folders), a note when a user's model hides a bundled one, and errors that list what
was looked at and what exists."""

from __future__ import annotations

from pathlib import Path

import pytest

import styletrans
import styletrans.inference.registry as registry
from styletrans.inference import ModelError, resolve_model
from styletrans.inference.registry import (
    bundled_checkpoints,
    bundled_models_dir,
    default_models_dirs,
    list_models,
    looks_like_path,
)


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A fake bundled folder holding ``tiny`` (and its int8 variant), an empty cache, and an
    empty working directory. The files are never loaded: resolution only looks at names."""
    bundled = tmp_path / "bundled"
    bundled.mkdir()
    (bundled / "tiny.onnx").write_bytes(b"bundled")
    (bundled / "tiny.int8.onnx").write_bytes(b"bundled int8")
    monkeypatch.setattr(registry, "bundled_models_dir", lambda: bundled)
    cache = tmp_path / "cache"
    monkeypatch.setenv("STYLETRANS_CACHE", str(cache))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return {"bundled": bundled, "cache": cache / "models", "work": work}


def test_the_bundled_styles_are_package_data_with_their_int8_variants() -> None:
    folder = bundled_models_dir()
    assert folder == Path(styletrans.__file__).parent / "assets" / "models"  # inside the package, not the checkout
    styles = list_models([folder])
    assert {"starry_night", "great_wave", "the_scream", "composition_vii"} <= set(styles)
    for name, path in styles.items():
        assert path == folder / f"{name}.onnx" and (folder / f"{name}.int8.onnx").is_file()


def test_a_bundled_checkpoint_is_a_base_to_fine_tune_from_not_a_style(places: dict[str, Path]) -> None:
    (places["bundled"] / "multistyle7.ckpt").write_bytes(b"a multi-style checkpoint")
    assert list_models([places["bundled"]]) == {"tiny": places["bundled"] / "tiny.onnx"}
    assert bundled_checkpoints() == {"multistyle7": places["bundled"] / "multistyle7.ckpt"}
    with pytest.raises(ModelError, match="no model of that name"):
        resolve_model("multistyle7")
    mine = places["work"] / "mine"
    mine.mkdir()
    (mine / "multistyle7.ckpt").write_bytes(b"the user's checkpoint")
    assert resolve_model("multistyle7", mine) == mine / "multistyle7.ckpt"  # a user's checkpoint is a model


def test_a_name_finds_the_bundled_model(places: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert resolve_model("tiny") == places["bundled"] / "tiny.onnx"
    assert capsys.readouterr().err == ""  # nothing hidden: no note


def test_a_folder_named_like_a_style_does_not_hide_it(places: dict[str, Path]) -> None:
    (places["work"] / "tiny").mkdir()  # a folder named like the style in the working directory
    (places["work"] / "models" / "tiny.onnx").mkdir(parents=True)  # and one named like its file in ./models
    (places["work"] / "models" / ".tiny.onnx").write_bytes(b"half-written export")  # hidden: not a model
    assert resolve_model("tiny") == places["bundled"] / "tiny.onnx"
    assert list_models([places["work"] / "models"]) == {}


def test_a_users_model_of_a_bundled_name_wins_with_a_one_line_note(places: dict[str, Path],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    places["cache"].mkdir(parents=True)
    mine = places["cache"] / "tiny.onnx"
    mine.write_bytes(b"mine")
    assert resolve_model("tiny") == mine
    note = capsys.readouterr().err
    assert note.count("\n") == 1 and note.startswith("note: model 'tiny': using ")
    assert str(mine) in note and f"the bundled {places['bundled'] / 'tiny.onnx'}" in note

    other = places["work"] / "elsewhere"
    other.mkdir()
    (other / "tiny.ckpt").write_bytes(b"a checkpoint")
    assert resolve_model("tiny", other) == other / "tiny.ckpt"  # --models-dir comes first of all
    note = capsys.readouterr().err
    assert note.count("\n") == 1 and str(mine) in note and "the bundled" in note


def test_the_search_order_is_models_dir_then_the_working_dir_then_the_cache_then_bundled(
        places: dict[str, Path]) -> None:
    dirs = default_models_dirs(places["work"] / "mine")
    assert dirs == [places["work"] / "mine", Path("models"), places["cache"], places["bundled"]]
    assert default_models_dirs(places["bundled"]) == [places["bundled"], Path("models"), places["cache"]]  # once


def test_a_missing_name_lists_what_was_looked_at_and_what_exists(places: dict[str, Path]) -> None:
    places["cache"].mkdir(parents=True)
    (places["cache"] / "mine.onnx").write_bytes(b"mine")
    (places["work"] / "starry").mkdir()
    with pytest.raises(ModelError) as error:
        resolve_model("starry")
    message = str(error.value)
    assert message.startswith("starry: no model of that name (./starry in the working directory is a folder")
    assert "looked in models (no such folder), " in message
    assert f"{places['cache']} (1 models), {places['bundled']} (bundled, 1 models)" in message
    assert "bundled models: tiny; other models found: mine; train another with `styletrans train" in message


def test_a_name_that_is_also_a_file_here_is_ambiguous(places: dict[str, Path]) -> None:
    (places["work"] / "tiny").write_bytes(b"some file")
    with pytest.raises(ModelError) as error:
        resolve_model("tiny")
    message = str(error.value)
    assert "tiny: ambiguous" in message and str(places["bundled"] / "tiny.onnx") in message and "./tiny" in message
    assert resolve_model("./tiny") == Path("tiny")  # written as a path, it is the file
    (places["work"] / "solo").write_bytes(b"no model has this name")
    assert resolve_model("solo") == Path("solo")  # a file that hides nothing is taken as given


def test_paths_are_paths_never_names(places: dict[str, Path]) -> None:
    assert looks_like_path("x.onnx") and looks_like_path("a/b") and looks_like_path("~/m") and looks_like_path("./x")
    assert not looks_like_path("starry_night") and not looks_like_path("starry.v2")
    with pytest.raises(ModelError, match=r"^tiny\.onnx: no such model file; models by name are in .*bundled models: "
                                         r"tiny"):
        resolve_model("tiny.onnx")  # not in the working directory: not quietly some other folder's file
    (places["work"] / "folder.onnx").mkdir()
    with pytest.raises(ModelError, match=r"^folder\.onnx: a folder, not a model file"):
        resolve_model("folder.onnx")
    assert resolve_model(places["bundled"] / "tiny.onnx") == places["bundled"] / "tiny.onnx"
