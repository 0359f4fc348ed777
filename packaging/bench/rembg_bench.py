"""rembg's side of `kromactl bench postprocess` (run as `python -c`, with rembg 2.0.86).

Arguments: U2NETP_ONNX PAGES_DIR OUT_DIR MASKS_DIR. Loads rembg's u2netp session on the given
model file (the one kromad uses; nothing is downloaded), warms it up on the first page, then
times the cut-outs of every page, file to file (open, remove, save PNG). The masks are written
afterwards, untimed, for the IoU comparison. Prints {"seconds": ..., "files": ...}.
"""
import glob
import json
import os
import shutil
import sys
import tempfile
import time

model, pages, out, masks = sys.argv[1:5]
home = tempfile.mkdtemp()
shutil.copy(model, os.path.join(home, "u2netp.onnx"))
os.environ["U2NET_HOME"] = home
import pooch


def no_download(*args, **kwargs):
    raise RuntimeError("rembg tried to download %r" % (args,))


pooch.retrieve = no_download
from PIL import Image
from rembg import new_session, remove

session = new_session("u2netp")
files = sorted(glob.glob(os.path.join(pages, "*.png")))
os.makedirs(out, exist_ok=True)
os.makedirs(masks, exist_ok=True)
remove(Image.open(files[0]), session=session)
started = time.perf_counter()
for path in files:
    remove(Image.open(path), session=session).save(os.path.join(out, os.path.basename(path)))
seconds = time.perf_counter() - started
for path in files:
    mask = remove(Image.open(path), session=session, only_mask=True)
    mask.save(os.path.join(masks, os.path.basename(path)))
print(json.dumps({"seconds": seconds, "files": len(files)}))
