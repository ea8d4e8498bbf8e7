"""Omniglot data: what the loader accepts and refuses, the cache, the splits, the download and
``imaml data omniglot``. Fixture sets are drawn in tmp_path; the real subsets are read from the shared data
folder when it exists. Downloads come from a local HTTP server: no test reaches the internet."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from imaml_core.cli import main
from imaml_core.common.errors import ConfigError
from imaml_core.tasks import omniglot, omniglot_download
from imaml_core.tasks.omniglot import CharacterSet, DataError, find_omniglot, load_omniglot, omniglot_splits
from imaml_core.tasks.omniglot_download import DownloadCancelled, download_omniglot, import_omniglot

from .omniglot_fixtures import characters, md5, write_folder, write_zip

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"
SMALL = ("images_background_small1.zip", "images_background_small2.zip")
THREE = {"Alpha": 4, "Beta": 3, "Gamma": 3}  # 10 characters in 3 alphabets


@pytest.fixture(autouse=True)
def private_folders(tmp_path, monkeypatch):
    """The default data and cache folders are the test's own; local servers are reached without a proxy."""
    monkeypatch.setenv("IMAML_DATA_DIR", str(tmp_path / "user-data"))
    monkeypatch.setenv("IMAML_CACHE_DIR", str(tmp_path / "user-cache"))
    for proxy in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)


def cache_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "user-cache" / "omniglot").glob("*.npz"))


# --- reading ---------------------------------------------------------------------------------------------


def test_folder_and_custom_zip_load_sorted_with_ink_high(tmp_path):
    write_folder(tmp_path / "data" / "images_background", characters(THREE))
    write_zip(tmp_path / "data" / "images_custom.zip", characters({"Delta": 2, "Eps": 3}, first=50), top="custom")
    (tmp_path / "data" / "README").write_text("not a source: ignored")
    sets = load_omniglot(tmp_path / "data")
    assert list(sets) == ["background", "custom"]
    background = sets["background"]
    assert background.images.shape == (10, 20, 28, 28) and background.images.dtype == np.uint8
    assert background.characters[:2] == ("Alpha/character01", "Alpha/character02")
    assert background.alphabets.count("Beta") == 3 and len(sets["custom"]) == 5
    # White paper is 0 after inversion; the stroke's core is full ink after Lanczos.
    assert background.images[:, :, 0, 0].max() == 0 and background.images.max() == 255


def test_a_single_zip_or_folder_is_one_source(tmp_path):
    files = characters(THREE)
    assert list(load_omniglot(write_zip(tmp_path / "mine.zip", files))) == ["mine"]
    flat = load_omniglot(write_zip(tmp_path / "images_flat.zip", files))["flat"]  # no top folder
    folder = load_omniglot(write_folder(tmp_path / "images_evaluation", files))["evaluation"]
    assert flat.characters == folder.characters and np.array_equal(flat.images, folder.images)


def test_find_without_data_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError, match=r"does not exist: run `imaml data omniglot`.*--data PATH"):
        find_omniglot()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no Omniglot zips or folders"):
        find_omniglot(tmp_path / "empty")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda f: f.pop("Beta/character02/0006_07.png"), "Beta/character02 has 19 drawings"),
        (lambda f: f.update({"Beta/notes.txt": b"x"}), "unexpected entry Beta/notes.txt"),
        (lambda f: f.update({"Beta/character02/0006_21.png": b"x"}), "unexpected entry Beta/character02/0006_21"),
        (lambda f: f.update({"Beta/character02/scan.png": b"x"}), "unexpected entry Beta/character02/scan.png"),
        (lambda f: f.update({"Beta/character02/x/0006_01.png": b"x"}), "unexpected entry Beta/character02/x/"),
    ],
    ids=["missing-drawing", "stray-file", "drawer-21", "bad-name", "too-deep"],
)
def test_layout_errors_name_the_wrong_entry(tmp_path, change, named):
    files = characters(THREE)
    change(files)
    with pytest.raises(DataError, match=re.escape(named)):
        load_omniglot(write_zip(tmp_path / "set.zip", files, top="set"))


def test_empty_alphabet_folder_is_refused(tmp_path):
    root = write_folder(tmp_path / "images_x", characters(THREE))
    (root / "Zeta").mkdir()
    with pytest.raises(DataError, match="alphabet Zeta has no characters"):
        load_omniglot(root)


def test_corrupt_png_names_the_entry(tmp_path):
    files = characters(THREE)
    files["Alpha/character03/0003_05.png"] = files["Alpha/character03/0003_05.png"][:60]
    with pytest.raises(DataError, match=r"Alpha/character03/0003_05.png is not a readable PNG"):
        load_omniglot(write_zip(tmp_path / "set.zip", files))


def test_official_name_with_other_content_fails_the_md5(tmp_path):
    path = write_zip(tmp_path / "images_evaluation.zip", characters(THREE), top="images_evaluation")
    expected = omniglot.KNOWN_MD5["images_evaluation.zip"]
    with pytest.raises(DataError, match=f"images_evaluation.zip has md5 {md5(path)}, expected {expected}"):
        load_omniglot(tmp_path)


@pytest.mark.parametrize("name", ["../escape.png", "set/../../escape.png", "/etc/escape.png", "C:/escape.png"])
def test_zip_entries_leaving_their_folder_are_refused(tmp_path, name):
    path = write_zip(tmp_path / "set.zip", characters(THREE), top="set")
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(zipfile.ZipInfo(name), b"x")
    with pytest.raises(DataError, match="leaves its folder"):
        load_omniglot(path)


def test_symlink_entries_are_refused(tmp_path):
    path = write_zip(tmp_path / "set.zip", characters(THREE), links={"Alpha/character01/0001_21.png": "/etc/passwd"})
    with pytest.raises(DataError, match="0001_21.png' is a symbolic link"):
        load_omniglot(path)


def test_symlink_inside_an_unpacked_folder_is_refused(tmp_path):
    root = write_folder(tmp_path / "images_x", characters(THREE))
    (root / "Alpha" / "character01" / "0001_01.png").unlink()
    os.symlink(root / "Beta" / "character01" / "0005_01.png", root / "Alpha" / "character01" / "0001_01.png")
    with pytest.raises(DataError, match=r"Alpha/character01/0001_01.png is a symbolic link"):
        load_omniglot(root)


def test_zip_bombs_are_refused_before_decoding(tmp_path, monkeypatch):
    files = characters(THREE)
    files["Alpha/character01/0001_01.png"] = bytes(omniglot.MAX_ENTRY_BYTES + 1)  # deflates to ~1 kB
    with pytest.raises(DataError, match="unpacks to 1048577 bytes"):
        load_omniglot(write_zip(tmp_path / "bomb.zip", files))
    monkeypatch.setattr(omniglot, "MAX_ENTRIES", 100)  # instead of writing 50,001 entries
    with pytest.raises(DataError, match="more than 100"):
        load_omniglot(write_zip(tmp_path / "many.zip", characters(THREE)))


# --- cache -----------------------------------------------------------------------------------------------


def test_second_load_reads_the_cache_without_decoding(tmp_path, monkeypatch):
    path = write_zip(tmp_path / "set.zip", characters(THREE))
    first = load_omniglot(path)["set"]
    assert len(cache_files(tmp_path)) == 1

    def refuse(*args):
        raise AssertionError("decoded although the cache holds the set")

    monkeypatch.setattr(omniglot, "_decode", refuse)
    again = load_omniglot(path)["set"]
    assert again.characters == first.characters and np.array_equal(again.images, first.images)


def test_unpacked_folder_is_cached_by_its_content(tmp_path):
    root = write_folder(tmp_path / "images_x", characters(THREE))
    first = load_omniglot(root)["x"]
    (root / "Alpha" / "character01" / "0001_01.png").write_bytes((root / "Beta/character01/0005_01.png").read_bytes())
    changed = load_omniglot(root)["x"]
    assert len(cache_files(tmp_path)) == 2 and not np.array_equal(changed.images[0, 0], first.images[0, 0])


def test_an_unwritable_cache_folder_only_warns(tmp_path):
    (tmp_path / "file").write_text("a file where the cache folder would be")
    with pytest.warns(RuntimeWarning, match="Omniglot cache not written"):
        sets = load_omniglot(write_zip(tmp_path / "set.zip", characters(THREE)), cache_dir=tmp_path / "file" / "c")
    assert len(sets["set"]) == 10


@pytest.mark.parametrize("damage", ["truncate", "wrong-dtype", "symlink"])
def test_a_damaged_cache_is_rebuilt(tmp_path, damage):
    path = write_zip(tmp_path / "set.zip", characters(THREE))
    first = load_omniglot(path)["set"]
    [cached] = cache_files(tmp_path)
    if damage == "truncate":
        cached.write_bytes(cached.read_bytes()[: cached.stat().st_size // 2])
    elif damage == "wrong-dtype":
        with np.load(cached) as npz:
            arrays = dict(npz)
        np.savez(cached.with_suffix(""), **{**arrays, "images": arrays["images"].astype(np.float32)})
    else:  # a link to a well-formed cache of other content is not read
        other = tmp_path / "other.npz"
        with np.load(cached) as npz:
            np.savez(other, **{**dict(npz), "images": np.zeros_like(npz["images"])})
        cached.unlink()
        cached.symlink_to(other)
    again = load_omniglot(path)["set"]
    assert np.array_equal(again.images, first.images)
    assert not cached.is_symlink() and np.load(cached)["images"].dtype == np.uint8


def test_real_subsets_give_242_characters_in_8_alphabets():
    if not all((SHARED / name).is_file() for name in SMALL):
        pytest.skip(f"the Omniglot subsets are not in {SHARED}")
    started = time.perf_counter()
    sets = load_omniglot(SHARED)
    built = time.perf_counter() - started
    assert {k: len(v) for k, v in sets.items()} == {"background_small1": 136, "background_small2": 156}
    started = time.perf_counter()
    load_omniglot(SHARED)
    # Reading two 2 MB cache files and hashing two 1.5 MB zips: far below decoding 5,840 PNGs.
    assert time.perf_counter() - started < min(1.0, built)
    parts = omniglot_splits(sets, "auto")
    chars = [set(p.characters) for p in parts.values()]
    alphabets = [set(p.alphabets) for p in parts.values()]
    assert sum(map(len, chars)) == len(set.union(*chars)) == 242
    assert sum(map(len, alphabets)) == len(set.union(*alphabets)) == 8
    ink = sets["background_small1"].images.mean() / 255
    assert 0.02 < ink < 0.2  # thin strokes on a blank page, ink high: the inversion is right


# --- splits ----------------------------------------------------------------------------------------------


def synthetic(alphabets: int, per_alphabet: int, prefix: str) -> CharacterSet:
    """A set without pictures: each character's images hold its own index, so a wrong copy is visible."""
    names = [f"{prefix}{a:02d}/character{c:02d}" for a in range(alphabets) for c in range(1, per_alphabet + 1)]
    index = (np.arange(len(names)) % 256).astype(np.uint8)
    images = np.broadcast_to(index[:, None, None, None], (len(names), 20, 28, 28))
    return CharacterSet(np.array(images), tuple(n.split("/")[0] for n in names), tuple(names))


def full_sets() -> dict[str, CharacterSet]:
    background = synthetic(30, 33, "Back")  # 990: close to the real 964 over 30 alphabets
    evaluation = synthetic(20, 33, "Eval")
    return {
        "background": background.subset(range(964)),
        "evaluation": evaluation.subset(range(659)),
    }


def assert_disjoint(parts: dict[str, CharacterSet]) -> None:
    names = [set(p.characters) for p in parts.values()]
    assert sum(map(len, names)) == len(set.union(*names))


def test_lake_and_authors_splits_have_the_published_sizes():
    sets = full_sets()
    lake = omniglot_splits(sets, "lake", seed=3)
    assert {k: len(v) for k, v in lake.items()} == {"train": 868, "val": 96, "test": 659}
    assert set(lake["test"].characters) == set(sets["evaluation"].characters)
    authors = omniglot_splits(sets, "authors", seed=3)
    assert {k: len(v) for k, v in authors.items()} == {"train": 1080, "val": 120, "test": 423}
    for parts in (lake, authors):
        assert_disjoint(parts)
    assert omniglot_splits(sets, "auto", seed=3)["val"].characters == lake["val"].characters


def test_splits_depend_on_the_seed_only():
    sets = full_sets()
    shuffled = {k: v.subset(np.random.default_rng(9).permutation(len(v))) for k, v in sets.items()}
    a = omniglot_splits(sets, "authors", seed=1)
    assert omniglot_splits(shuffled, "authors", seed=1)["test"].characters == a["test"].characters
    assert omniglot_splits(sets, "authors", seed=2)["test"].characters != a["test"].characters
    part = a["val"]
    index = [int(name.split("/")[0][4:]) * 33 + int(name[-2:]) - 1 for name in part.characters]
    assert np.array_equal(part.images[:, 0, 0, 0], np.array(index) % 256)  # each image follows its name


def test_alphabet_split_keeps_shared_characters_once():
    one, two = synthetic(5, 4, "A"), synthetic(7, 4, "A")  # two shares one's 5 alphabets
    parts = omniglot_splits({"small1": one, "small2": two}, "auto", seed=0)
    assert_disjoint(parts)
    alphabets = [set(p.alphabets) for p in parts.values()]
    assert sum(map(len, alphabets)) == len(set.union(*alphabets)) == 7
    assert sum(map(len, parts.values())) == 28
    assert [len(a) for a in alphabets] == [4, 1, 2]  # 60 / 15 / 25 % of 7, rounded, at least one each


def test_impossible_splits_say_what_is_missing():
    small = {"background_small1": synthetic(3, 2, "S")}
    with pytest.raises(DataError, match=r"split 'lake' needs.*images_background.zip and images_evaluation.zip"):
        omniglot_splits(small, "lake")
    with pytest.raises(DataError, match=r"images_evaluation.zip missing"):
        omniglot_splits({"background": synthetic(3, 2, "B")}, "authors")
    with pytest.raises(DataError, match="at least 3 alphabets"):
        omniglot_splits({"x": synthetic(2, 2, "S")}, "alphabet")
    with pytest.raises(ConfigError, match="unknown Omniglot split 'random'"):
        omniglot_splits(small, "random")


# --- download --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def serving(files: dict[str, bytes], honour_range: bool = True) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """A local HTTP server for ``files`` (by name, under any folder) that answers ``Range: bytes=N-`` with
    206 (or ignores it); yields its base URL and the (path, Range) of each request, and is shut down and
    joined on exit."""
    requests: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked = self.headers.get("Range", "")
            requests.append((self.path, asked))
            data = files.get(self.path.rsplit("/", 1)[-1])
            if data is None:
                self.send_error(404)
                return
            match = re.fullmatch(r"bytes=(\d+)-", asked) if honour_range else None
            start = int(match[1]) if match else 0
            if start >= len(data) > 0:
                self.send_response(416)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206 if match else 200)
            if match:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            with contextlib.suppress(ConnectionError):
                self.wfile.write(data[start:])

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), name="omniglot-test-http")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/python/", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def official(tmp_path, monkeypatch) -> dict[str, bytes]:
    """Fixture zips under the official names, with the md5 tables changed to theirs."""
    zips = {
        "images_background.zip": write_zip(tmp_path / "b.zip", characters(THREE), top="images_background"),
        "images_evaluation.zip": write_zip(tmp_path / "e.zip", characters({"Eta": 2, "Theta": 2}, 30), top="x"),
    }
    for name, path in zips.items():
        monkeypatch.setitem(omniglot_download.OFFICIAL, name, md5(path))
        monkeypatch.setitem(omniglot.KNOWN_MD5, name, md5(path))
    return {name: path.read_bytes() for name, path in zips.items()}


def test_download_checks_both_zips_and_skips_them_next_time(tmp_path, official):
    seen: list[tuple[str, int, int | None]] = []
    with serving(official) as (url, requests):
        dest = download_omniglot(tmp_path / "d", url, progress=lambda *a: seen.append(a))
        assert download_omniglot(tmp_path / "d", url) == dest
    assert [path for path, _ in requests] == ["/python/images_background.zip", "/python/images_evaluation.zip"]
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == official  # no .part left
    size = len(official["images_evaluation.zip"])
    assert seen[-1] == ("images_evaluation.zip", size, size)
    assert list(load_omniglot(dest)) == ["background", "evaluation"]


@pytest.mark.parametrize("honour_range", [True, False], ids=["206-appends", "200-restarts"])
def test_download_resumes_from_a_part_file(tmp_path, official, honour_range):
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "images_background.zip.part").write_bytes(official["images_background.zip"][:1000])
    with serving(official, honour_range) as (url, requests):
        download_omniglot(dest, url)
    assert requests[0] == ("/python/images_background.zip", "bytes=1000-")
    assert (dest / "images_background.zip").read_bytes() == official["images_background.zip"]
    assert not list(dest.glob("*.part"))


def test_a_part_as_long_as_the_file_starts_over(tmp_path, official):
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "images_background.zip.part").write_bytes(official["images_background.zip"])
    with serving(official) as (url, requests):
        download_omniglot(dest, url)
    assert [r[1] for r in requests[:2]] == [f"bytes={len(official['images_background.zip'])}-", ""]  # 416, then all
    assert (dest / "images_background.zip").read_bytes() == official["images_background.zip"]


def test_download_with_the_wrong_md5_deletes_the_part(tmp_path, official):
    served = {**official, "images_evaluation.zip": official["images_background.zip"]}
    with serving(served) as (url, _), pytest.raises(DataError, match="images_evaluation.zip from .* has md5"):
        download_omniglot(tmp_path / "d", url)
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["images_background.zip"]


def test_cancelled_download_keeps_the_part_and_resumes(tmp_path, official, monkeypatch):
    monkeypatch.setattr(omniglot_download, "CHUNK", 1024)
    polls = iter(range(100))
    with serving(official) as (url, requests):
        with pytest.raises(DownloadCancelled, match="cancelled"):
            download_omniglot(tmp_path / "d", url, should_stop=lambda: next(polls) == 3)
        assert (tmp_path / "d" / "images_background.zip.part").stat().st_size == 3 * 1024
        download_omniglot(tmp_path / "d", url)
    assert requests[1][1] == "bytes=3072-"
    assert (tmp_path / "d" / "images_background.zip").read_bytes() == official["images_background.zip"]


def test_download_never_writes_through_a_linked_part(tmp_path, official):
    dest, victim = tmp_path / "d", tmp_path / "victim"
    dest.mkdir()
    victim.write_bytes(b"keep")
    (dest / "images_background.zip.part").symlink_to(victim)
    with serving(official) as (url, _), pytest.raises(DataError, match="cannot resume from .*symbolic link"):
        download_omniglot(dest, url)
    assert victim.read_bytes() == b"keep"


def test_download_http_error_is_one_line(tmp_path):
    with serving({}) as (url, _), pytest.raises(DataError, match=r"failed: HTTP 404"):
        download_omniglot(tmp_path / "d", url)


def test_import_copies_known_zips_md5_checked(tmp_path, official):
    source = tmp_path / "src"
    source.mkdir()
    for name, data in official.items():
        (source / name).write_bytes(data)
    (source / "images_custom.zip").write_bytes(b"not copied")
    dest = import_omniglot(source, tmp_path / "d")
    assert sorted(p.name for p in dest.iterdir()) == sorted(official)
    (source / "images_evaluation.zip").write_bytes(b"damaged")
    with pytest.raises(DataError, match="images_evaluation.zip has md5"):
        import_omniglot(source / "images_evaluation.zip", tmp_path / "d2")
    assert not (tmp_path / "d2" / "images_evaluation.zip").exists()


# --- command line ----------------------------------------------------------------------------------------


def test_cli_downloads_and_reports_the_sets(tmp_path, official, capsys):
    with serving(official) as (url, _):
        assert main(["data", "omniglot", "--url", url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["data"] == str(tmp_path / "user-data" / "omniglot")
    assert report["sets"] == {
        "background": {"characters": 10, "alphabets": 3},
        "evaluation": {"characters": 4, "alphabets": 2},
    }
    assert report["split"] == "lake" and report["parts"] == {"train": 9, "val": 1, "test": 4}
    assert len(cache_files(tmp_path)) == 2


def test_cli_imports_the_real_subsets(tmp_path, capsys):
    if not all((SHARED / name).is_file() for name in SMALL):
        pytest.skip(f"the Omniglot subsets are not in {SHARED}")
    assert main(["data", "omniglot", "--from", str(SHARED), "--to", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "background_small1: 136 characters in 5 alphabets" in out and "alphabet" in out
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == list(SMALL)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "{tmp}/nowhere"], "nowhere does not exist"),
        (["--url", "ftp://example.invalid/"], "must start with http:// or https://"),
        (["--from", "{tmp}/mine.zip"], "is not one of the Omniglot zips"),
        (["--from", "{tmp}/a", "--url", "http://x/"], "not allowed with argument"),
    ],
    ids=["missing-source", "bad-url", "custom-zip", "from-and-url"],
)
def test_cli_bad_input_is_one_error_line(tmp_path, capsys, argv, message):
    (tmp_path / "mine.zip").write_bytes(b"zip")
    assert main(["data", "omniglot", *(a.format(tmp=tmp_path) for a in argv)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]


def test_cache_key_is_the_zip_hash(tmp_path):
    path = write_zip(tmp_path / "set.zip", characters(THREE))
    load_omniglot(path)
    [cached] = cache_files(tmp_path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() in cached.name
