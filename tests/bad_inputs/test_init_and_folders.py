"""`kadvisor init` and `folder:` sources on awkward folders: quotes and backslashes in the
path, unreadable images, classes of one image, a file where a folder should be."""

import tomllib
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from kadvisor.cli import main
from kadvisor.recipe import load_recipe


def _folder(root: Path) -> Path:
    """cat: 3 images; dog: 1 image and one file that is not an image."""
    rng = np.random.default_rng(0)
    for name, count in (("cat", 3), ("dog", 1)):
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    (root / "dog" / "broken.png").write_bytes(b"not an image")
    return root


def test_init_writes_valid_toml_for_a_path_with_quotes_and_backslashes(tmp_path):
    root = _folder(tmp_path / 'we"ird\\name')
    out = tmp_path / "r.toml"
    result = CliRunner().invoke(main, ["init", str(root), "-o", str(out)])
    assert result.exit_code == 0, result.output
    parsed = tomllib.loads(out.read_text(encoding="utf-8"))  # valid TOML
    assert parsed["data"]["source"] == f"folder:{root.as_posix()}"
    assert load_recipe(out).data.source == f"folder:{root.as_posix()}"
    assert CliRunner().invoke(main, ["recipe", "check", str(out)]).exit_code == 0


def test_init_counts_only_readable_images_and_warns_about_them(tmp_path):
    root = _folder(tmp_path / "photos")
    result = CliRunner().invoke(main, ["init", str(root), "-o", str(tmp_path / "r.toml")])
    assert result.exit_code == 0, result.output
    assert "2 classes, 4 images (1–3 per class)" in result.output
    assert (f"Warning: 1 image file(s) cannot be read and will be skipped by fit: "
            f"{root / 'dog' / 'broken.png'}") in result.output
    assert "Warning: class(es) 'dog' have one image" in result.output


def test_init_refuses_to_overwrite_without_force(tmp_path):
    root = _folder(tmp_path / "photos")
    out = tmp_path / "r.toml"
    out.write_text("# mine\n")
    result = CliRunner().invoke(main, ["init", str(root), "-o", str(out)])
    assert result.exit_code == 1 and out.read_text() == "# mine\n"
    assert result.output.strip() == f"Error: -o {out}: exists; use --force to overwrite it, or choose another file"
    assert CliRunner().invoke(main, ["init", str(root), "-o", str(out), "--force"]).exit_code == 0
    assert "folder:" in out.read_text()


def test_a_folder_source_that_is_a_file_says_so(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'name = "f"\n[data]\nsource = "folder:{(tmp_path / "notes.txt").as_posix()}"\n')
    result = CliRunner().invoke(main, ["fit", str(recipe), "--out", str(tmp_path / "runs"), "--quiet"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and "Traceback" not in result.output, result.output
    assert lines[0] == (f"Error: data.source folder '{(tmp_path / 'notes.txt').as_posix()}' is a file, not a "
                        f"folder; expected a folder with one sub-folder of images per class")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
