"""Named public datasets: found in a local copy or the cache, else downloaded into the cache once.

The cache is `data.cache_dir`, else $MGANAI_DATA, else ~/.cache/mganai. MNIST and
Fashion-MNIST are four IDX files each (Fashion-MNIST is also read from Debian's
`dataset-fashion-mnist` package when installed); EMNIST comes as one NIST zip of
all splits; CIFAR-10 is read from its python batches, which torchvision downloads
when it is installed. Offline without the files, each is one error line saying
how to get them. A download is checked (IDX parsed) before it enters the cache.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from mganai.data.idx import load_idx_dir, read_idx
from mganai.data.notice import notice
from mganai.errors import DataError

IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
IDX_MIRRORS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
LOCAL_COPIES = {"fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),)}  # Debian: dataset-fashion-mnist
EMNIST_ZIP = "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip"
CIFAR10_TAR = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def cache_dir(configured: str = "") -> Path:
    """Where downloads go: the config's cache_dir, else $MGANAI_DATA, else ~/.cache/mganai."""
    return Path(configured or os.environ.get("MGANAI_DATA") or Path.home() / ".cache" / "mganai").expanduser()


def download(url: str, dest: Path, timeout: float = 60.0) -> None:
    """Stream `url` to `dest` through a temporary file, so an interrupted download leaves nothing behind."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh, urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            shutil.copyfileobj(response, fh, length=1 << 20)
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _idx_complete(d: Path) -> bool:
    return all((d / f).is_file() or (d / f.removesuffix(".gz")).is_file() for f in IDX_FILES)


def mnist_like(name: str, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST or Fashion-MNIST (train + t10k pooled): uint8 [70000, 1, 28, 28] and labels."""
    for local in (*LOCAL_COPIES.get(name, ()), cache / name):
        if _idx_complete(local):
            return load_idx_dir(local)
    target = cache / name
    errors = []
    for fname in IDX_FILES:
        if (target / fname).is_file():
            continue
        for mirror in IDX_MIRRORS[name]:
            try:
                download(mirror + fname, target / fname)
                read_idx(target / fname)  # a wrong page or cut-off file must not stay in the cache
                break
            except DataError as exc:
                (target / fname).unlink(missing_ok=True)
                errors.append(str(exc))
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                errors.append(f"{mirror}: {getattr(exc, 'reason', exc)}")
        else:
            raise DataError(
                f"{name}: not found in {target} and could not be downloaded ({errors[-1]}); "
                f"when offline, put {', '.join(IDX_FILES)} into {target}, or use --dataset idx:DIR"
            )
    notice(f"{name}: downloaded into {target}")
    return load_idx_dir(target)


def emnist(split: str, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """One EMNIST split ("letters" or "digits"), train + test pooled, upright: uint8 [N, 1, 28, 28] and labels."""
    target = cache / "emnist"
    prefix = f"emnist-{split}-"
    wanted = [prefix + f for f in IDX_FILES]
    if not all((target / f).is_file() for f in wanted):
        archive = target / "gzip.zip"
        try:
            if not archive.is_file():
                notice(f"emnist: downloading {EMNIST_ZIP} (about 560 MB) into {target}")
                download(EMNIST_ZIP, archive, timeout=120.0)
            with zipfile.ZipFile(archive) as z:
                for f in wanted:
                    (target / f).write_bytes(z.read(f"gzip/{f}"))
        except (urllib.error.URLError, OSError, TimeoutError, zipfile.BadZipFile, KeyError) as exc:
            raise DataError(
                f"emnist: {', '.join(wanted[:2])}... not found in {target} and could not be fetched "
                f"({type(exc).__name__}: {getattr(exc, 'reason', exc)}); download {EMNIST_ZIP}, take "
                f"gzip/{prefix}*.gz from it into {target}, or use --dataset idx:DIR"
            ) from None
    return load_idx_dir(target, prefix=prefix)


def cifar10(cache: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """CIFAR-10's 50,000 training images: uint8 [N, 3, 32, 32], labels, class names."""
    d = cache / "cifar-10-batches-py"
    if not (d / "data_batch_1").is_file():
        try:
            import torchvision  # type: ignore[import-not-found]
        except ImportError:
            raise DataError(
                f"cifar10: {d} not found and torchvision is not installed to download it; "
                f"download {CIFAR10_TAR} and extract it into {cache} (or pip install torchvision)"
            ) from None
        try:
            torchvision.datasets.CIFAR10(root=str(cache), train=True, download=True)
        except Exception as exc:  # noqa: BLE001 - any failure of the download is one error line
            raise DataError(
                f"cifar10: torchvision could not download it into {cache} (offline?: {type(exc).__name__}: {exc}); "
                f"download {CIFAR10_TAR} and extract it into {cache}"
            ) from None
    xs, ys = [], []
    for f in sorted(d.glob("data_batch_*")):
        batch = _unpickle(f)
        try:
            xs.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch[b"labels"], dtype=np.int64))
        except (KeyError, ValueError) as exc:
            raise DataError(f"cifar10 batch {f} is not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from None
    meta = d / "batches.meta"
    names = [n.decode() for n in _unpickle(meta)[b"label_names"]] if meta.is_file() else None
    return np.concatenate(xs), np.concatenate(ys), names or [str(i) for i in range(10)]


def _unpickle(path: Path) -> dict:
    """The CIFAR python format is pickle (as torchvision reads it); only files in the user's own cache are read."""
    try:
        with path.open("rb") as fh:
            return pickle.load(fh, encoding="bytes")  # noqa: S301
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as exc:
        raise DataError(f"cannot read cifar10 batch {path}: {type(exc).__name__}: {exc}") from None
