#!/usr/bin/env python3
"""Write rembg's u2netp masks of the test images: `<name>.rembg_mask.png` next to them.

These are the references `tests/e2e/postprocess.rs` compares kromad's masks with. Made with
rembg 2.0.86, onnxruntime 1.31.1, Pillow 13.0.0 and numpy 2.4.6, on the u2netp.onnx that
`kromactl local-models install` installs (rembg's own file, md5 8e83ca70e441ab06c318d82300c84806):

    python3 -m venv venv && venv/bin/pip install rembg==2.0.86 onnxruntime==1.31.1
    venv/bin/python make_images.py .
    venv/bin/python rembg_masks.py ~/.local/share/kroma/models/models/u2netp.onnx

rembg is pointed at that file through U2NET_HOME and may not download anything.
"""
import glob
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    model = sys.argv[1]
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
    for path in sorted(glob.glob(os.path.join(HERE, "*_*x*.png"))):
        if path.endswith(".rembg_mask.png"):
            continue
        mask = remove(Image.open(path), session=session, only_mask=True)
        out = path[: -len(".png")] + ".rembg_mask.png"
        mask.save(out)
        print(out)


if __name__ == "__main__":
    main()
