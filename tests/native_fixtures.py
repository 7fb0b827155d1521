"""Write tiny datasets in each native layout (real file names, real columns) into a folder.

Every ``write_<dataset>(root, ...) -> Path`` returns the path to give ``read_dataset`` (the dataset
root; for ``write_list`` the list file). Scores are deterministic (``score_at``) and differ from
image to image. ``full=True`` writes full-size label files with the real image names kept in
tests/data/readers/real_names.json.gz (and LIVE's and CSIQ's real scores, as in LIQE's lists);
``images=False`` writes labels only (read them with ``check_images=False``). Images are 4x4 files
in the format their suffix names.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
from pathlib import Path

import numpy as np
import openpyxl
import scipy.io
from PIL import Image

REAL_NAMES = Path(__file__).parent / "data" / "readers" / "real_names.json.gz"
LIVE_FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))
CSIQ_TYPES = {"awgn": ("noise", "AWGN", 1), "jpeg": ("jpeg", "JPEG", 2), "jpeg2000": ("jpeg 2000", "jpeg2000", 3),
              "fnoise": ("fnoise", "fnoise", 4), "blur": ("blur", "BLUR", 5), "contrast": ("contrast", "contrast", 6)}
_FORMATS = {".png": "PNG", ".bmp": "BMP", ".jpg": "JPEG", ".jpeg": "JPEG"}


def score_at(i: int, lo: float, hi: float) -> float:
    """A deterministic score in ``[lo, hi]`` for the ``i``-th listed image (rounded to 4 places)."""
    return round(lo + (hi - lo) * ((i * 37 + 11) % 101) / 100, 4)


@functools.cache
def real_names() -> dict:
    """The real names (and LIVE/CSIQ scores) kept in tests/data/readers/real_names.json.gz."""
    return json.loads(gzip.decompress(REAL_NAMES.read_bytes()))


@functools.cache
def _image_bytes(suffix: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (120, 60, 30)).save(buffer, _FORMATS[suffix.lower()])
    return buffer.getvalue()


def write_images(root: Path, names: list[str]) -> None:
    """Write a tiny image under each of ``names`` (relative to ``root``)."""
    made = set()
    for name in names:
        path = root / name
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_bytes(_image_bytes(path.suffix))


def write_live(root: Path, n_per_folder: int = 2, *, full: bool = False, images: bool = True) -> Path:
    """LIVE Release 2: dmos.mat, dmos_realigned.mat, refnames_all.mat (982 entries) + distorted .bmp.

    Tiny: the first ``n_per_folder`` entries of each folder are distorted, the rest reference
    entries (orgs = 1). Full: the real 779/203 layout and LIQE's scores (dmos_new = 100 - score).
    """
    names = [f"{folder}/img{k}.bmp" for folder, count in LIVE_FOLDERS for k in range(1, count + 1)]
    orgs, dmos_new, dmos_std = np.ones(982), np.zeros(982), np.zeros(982)
    refnames = np.array(["parrots.bmp"] * 982, dtype=object)
    if full:
        by_name = {row[0]: row[1:] for row in real_names()["live"]}
        for i, name in enumerate(names):
            if name in by_name:
                refnames[i], score, dmos_std[i] = by_name[name]
                orgs[i], dmos_new[i] = 0, 100 - score
    else:
        start = 0
        for _, count in LIVE_FOLDERS:
            for i in range(start, start + n_per_folder):
                orgs[i], dmos_new[i], dmos_std[i] = 0, score_at(i, -5, 95), score_at(i, 1, 10)
                refnames[i] = ("womanhat.bmp", "parrots.bmp", "buildings.bmp")[i % 3]
            start += count
    root.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / "dmos.mat", {"dmos": (dmos_new + 3) * (1 - orgs), "orgs": orgs})
    scipy.io.savemat(root / "dmos_realigned.mat", {"dmos_new": dmos_new, "dmos_std": dmos_std, "orgs": orgs})
    scipy.io.savemat(root / "refnames_all.mat", {"refnames_all": refnames.reshape(1, -1)})
    if images:
        write_images(root, [n for n, o in zip(names, orgs) if o == 0])
    return root


def write_csiq(root: Path, n_refs: int = 2, *, full: bool = False, images: bool = True) -> Path:
    """CSIQ: csiq.DMOS.xlsx (sheet all_by_image, title rows, header on row 4) + dst_imgs/<type>/.

    Tiny: references "1600" (stored as a number, as in the real file) and "shroom"... with levels 1-2
    of every type. Full: the real 866 names with LIQE's scores (dmos = 1 - score).
    """
    if full:
        listed = real_names()["csiq"]
    else:
        refs = ["1600", "shroom", "sunset_sparrow"][:n_refs]
        listed = [[f"dst_imgs/{folder}/{ref}.{token}.{level}.png", 0, 0]
                  for ref in refs for folder, (_, token, _) in CSIQ_TYPES.items() for level in (1, 2)]
        listed = [[name, score_at(i, 0, 1), score_at(i, 0.01, 0.2)] for i, (name, _, _) in enumerate(listed)]
    book = openpyxl.Workbook()
    book.active.title = "all_by_distortion"  # a decoy: the reader must pick all_by_image by name
    sheet = book.create_sheet("all_by_image")
    sheet.append(["CSIQ DMOS scores, all images"])
    sheet.append([])
    sheet.append(["(dmos: 0 = no distortion)"])
    sheet.append(["image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos"])
    for name, score, std in listed:
        folder, file_name = name.split("/")[1:]
        image, _, level, _ = file_name.split(".")
        word, _, index = CSIQ_TYPES[folder]
        sheet.append([int(image) if image.isdigit() else image, index, word, int(level), std, round(1 - score, 6)])
    root.mkdir(parents=True, exist_ok=True)
    book.save(root / "csiq.DMOS.xlsx")
    if images:
        write_images(root, [row[0] for row in listed])
    return root


def write_kadid(root: Path, n_refs: int = 3, *, n_types: int = 2, n_levels: int = 2, full: bool = False,
                images: bool = True) -> Path:
    """KADID-10k: dmos.csv (dist_img, ref_img, dmos, var) + images/Ixx_tt_ll.png. Full: 81 x 25 x 5."""
    if full:
        n_refs, n_types, n_levels = 81, 25, 5
    names = [(f"I{r:02d}_{t:02d}_{lv:02d}.png", f"I{r:02d}.png") for r in range(1, n_refs + 1)
             for t in range(1, n_types + 1) for lv in range(1, n_levels + 1)]
    root.mkdir(parents=True, exist_ok=True)
    with (root / "dmos.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dist_img", "ref_img", "dmos", "var"])
        writer.writerows([d, r, score_at(i, 1, 5), score_at(i, 0.04, 1.5)] for i, (d, r) in enumerate(names))
    if images:
        write_images(root / "images", [d for d, _ in names])
    return root


def write_bid(root: Path, n: int = 4, *, full: bool = False, images: bool = True) -> Path:
    """BID: DatabaseGrades.xlsx (header, then image number, MOS, ...) + ImageDatabase/DatabaseImage%04d.JPG.

    Tiny: images 1, 3, 4, 6, ... (with gaps, as the real numbering has). Full: the real 586 numbers.
    """
    numbers = real_names()["bid"] if full else [k for k in range(1, 2 * n) if k % 2 or k == 4][:n]
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Image Number", "Average Grade", "Number of Grades"])
    for i, number in enumerate(numbers):
        sheet.append([number, score_at(i, 0, 5), 20])
    root.mkdir(parents=True, exist_ok=True)
    book.save(root / "DatabaseGrades.xlsx")
    if images:
        write_images(root, [f"ImageDatabase/DatabaseImage{k:04d}.JPG" for k in numbers])
    return root


def write_clive(root: Path, n: int = 4, *, full: bool = False, images: bool = True) -> Path:
    """CLIVE: Data/AllImages_release.mat (Nx1 cell), AllMOS_release.mat, AllStdDev_release.mat (1xN),
    starting with the 7 training images t1..t7 (under Images/trainingImages/), then Images/*.

    Tiny: t1..t7 then ``n`` test images. Full: the real 1,169 names.
    """
    names = real_names()["clive"] if full else [f"t{k}.bmp" for k in range(1, 8)] + [
        f"{100 + k}.{'JPG' if k % 2 else 'bmp'}" for k in range(n)]
    data = root / "Data"
    data.mkdir(parents=True, exist_ok=True)
    cells = np.array(names, dtype=object).reshape(-1, 1)
    scipy.io.savemat(data / "AllImages_release.mat", {"AllImages_release": cells})
    mos = np.array([[score_at(i, 3, 92) for i in range(len(names))]])
    std = np.array([[score_at(i, 5, 25) for i in range(len(names))]])
    scipy.io.savemat(data / "AllMOS_release.mat", {"AllMOS_release": mos})
    scipy.io.savemat(data / "AllStdDev_release.mat", {"AllStdDev_release": std})
    if images:
        write_images(root / "Images", [n for n in names if not n.startswith("t")])
        write_images(root / "Images" / "trainingImages", [n for n in names if n.startswith("t")])
    return root


def write_koniq(root: Path, n: int = 6, *, full: bool = False, images: bool = True) -> Path:
    """KonIQ-10k: koniq10k_scores_and_distributions.csv, koniq10k_distributions_sets.csv, 1024x768/*.jpg.

    Counts c1..c5 give MOS and SD; MOS_zscore is a non-linear increasing map of MOS onto 0-100.
    Sets cycle training, training, validation, test, ... Full: the real 10,073 names.
    """
    names = real_names()["koniq10k"] if full else [f"{826373 + 1000 * k}.jpg" for k in range(n)]
    sets = ("training", "training", "validation", "test")
    rows = []
    for i, name in enumerate(names):
        counts = [i % 3, 2 + i % 5, 10 + i % 7, 30 + (i * 7) % 40, (i * 3) % 25]
        mos = np.repeat(np.arange(1, 6), counts).mean()
        rows.append((name, counts, 100 * ((mos - 1) / 4) ** 1.2, sets[i % 4]))
    write_koniq_labels(root, rows)
    if images:
        write_images(root / "1024x768", names)
    return root


def write_koniq_labels(root: Path, rows: list[tuple[str, list[int], float, str]]) -> Path:
    """KonIQ-10k's two label files from ``(image_name, [c1..c5], MOS_zscore, set)`` rows: MOS and SD
    are the mean and sample std of the votes the counts give, as in the release."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "koniq10k_scores_and_distributions.csv").open("w", newline="") as scores, \
            (root / "koniq10k_distributions_sets.csv").open("w", newline="") as splits:
        score_writer = csv.writer(scores, quoting=csv.QUOTE_NONNUMERIC)
        split_writer = csv.writer(splits, quoting=csv.QUOTE_NONNUMERIC)
        columns = ["image_name", "c1", "c2", "c3", "c4", "c5", "c_total"]
        score_writer.writerow([*columns, "MOS", "SD", "MOS_zscore"])
        split_writer.writerow([*columns, "set"])
        for name, counts, zscore, part in rows:
            grades = np.repeat(np.arange(1, 6), counts)
            mos, sd = grades.mean(), grades.std(ddof=1)
            score_writer.writerow([name, *counts, int(sum(counts)), mos, sd, zscore])
            split_writer.writerow([name, *counts, int(sum(counts)), part])
    return root


def write_tid2013(root: Path, n_refs: int = 2, *, n_types: int = 2, n_levels: int = 2, full: bool = False,
                  images: bool = True) -> Path:
    """TID2013: mos_with_names.txt, mos_std.txt, distorted_images/.

    Tiny: level-2 names are listed lower-case (``i01_01_2.bmp``) as the real file does for some;
    every file on disk is upper-case, so the reader must match across case. Full: the real 3,000 names.
    """
    if full:
        names = real_names()["tid2013"]
    else:
        names = [f"{'i' if lv == 2 else 'I'}{r:02d}_{t:02d}_{lv}.bmp" for r in range(1, n_refs + 1)
                 for t in range(1, n_types + 1) for lv in range(1, n_levels + 1)]
    root.mkdir(parents=True, exist_ok=True)
    lines = [f"{score_at(i, 0.2, 7.2):.5f} {name}" for i, name in enumerate(names)]
    (root / "mos_with_names.txt").write_text("\r\n".join(lines) + "\r\n")
    (root / "mos_std.txt").write_text("\r\n".join(f"{score_at(i, 0.1, 1.2):.5f}" for i in range(len(names))) + "\r\n")
    if images:
        write_images(root / "distorted_images", [name[0].upper() + name[1:] for name in names])
    return root


def write_spaq(root: Path, n: int = 5, *, full: bool = False, images: bool = True) -> Path:
    """SPAQ: "Annotations/MOS and Image attribute scores.xlsx" + TestImage/00001.jpg... Full: 11,125."""
    names = [f"{k:05d}.jpg" for k in range(1, (11125 if full else n) + 1)]
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Sheet1")
    sheet.append(["Image name", "MOS", "Brightness", "Colorfulness", "Contrast", "Noisiness", "Sharpness"])
    for i, name in enumerate(names):
        sheet.append([name, score_at(i, 2, 98), 50.0, 51.0, 52.0, 53.0, 54.0])
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    book.save(root / "Annotations" / "MOS and Image attribute scores.xlsx")
    if images:
        write_images(root / "TestImage", names)
    return root


def write_agiqa(root: Path, n: int = 4, *, full: bool = False, images: bool = True) -> Path:
    """AGIQA-3K: data.csv (name, prompt, adj1, adj2, style, mos_quality, std_quality, mos_align,
    std_align; prompts with commas are quoted) with the images beside it. Full: the real 2,982 names."""
    names = real_names()["agiqa3k"] if full else [f"AttnGAN_normal_{k:03d}.jpg" for k in range(n)]
    root.mkdir(parents=True, exist_ok=True)
    with (root / "data.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "prompt", "adj1", "adj2", "style", "mos_quality", "std_quality", "mos_align",
                         "std_align"])
        for i, name in enumerate(names):
            writer.writerow([name, "a cat, sitting on a mat", "", "", "normal", score_at(i, 0.3, 4.8),
                             score_at(i, 0.1, 1.0), 3.0, 0.5])
    if images:
        write_images(root, names)
    return root


def write_list(root: Path, n: int = 3, *, suffix: str = ".csv", header: bool = True, images: bool = True) -> Path:
    """A user list ``labels<suffix>`` (.csv, .tsv, .txt, .json, .jsonl) of ``imgs/<k>.png`` rows with
    score and std (and ref in the headed and JSON forms); returns the list file."""
    rows = [{"path": f"imgs/{k}.png", "score": score_at(k, 0, 10), "std": score_at(k, 0.1, 1), "ref": f"c{k % 2}"}
            for k in range(n)]
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"labels{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(rows))
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        sep = "," if suffix == ".csv" else "\t"
        lines = [sep.join(rows[0])] if header else []
        lines += [sep.join(str(v) for v in (row.values() if header else list(row.values())[:3])) for row in rows]
        path.write_text("\n".join(lines) + "\n")
    if images:
        write_images(root, [row["path"] for row in rows])
    return path


WRITERS = {"live": write_live, "csiq": write_csiq, "kadid10k": write_kadid, "bid": write_bid,
           "clive": write_clive, "koniq10k": write_koniq, "tid2013": write_tid2013, "spaq": write_spaq,
           "agiqa3k": write_agiqa}
"""Dataset name -> writer, for tests parametrised over the native datasets."""
