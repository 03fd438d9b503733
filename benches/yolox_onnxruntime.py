"""onnxruntime's time per frame for YOLOX-Nano on Ped2 at both of the `detector`
stage's input sizes: the model's 416 x 416 and 416 x 288 ("fit", the input cut to
Ped2's aspect), letterboxed as the stage does (top-left, padded with 114).

The model declares a fixed 416 x 416 input, which onnxruntime enforces, so the
416 x 288 run loads a copy whose declared input (and recorded intermediate
shapes) are cleared in memory with the `onnx` package; the file is not changed.

    THREADS=1 python benches/yolox_onnxruntime.py [DATA]   (DATA: the shared data folder, default ../shared/data)

Compare with `RAYON_NUM_THREADS=1 cargo run --release -p vigil-plugin-localize
--example ped2_localizers -- --speed-only`, which times the stage at both sizes.
Needs numpy, opencv-python-headless, onnxruntime and onnx.
"""
import glob
import os
import sys
import time

import cv2
import numpy as np
import onnx
import onnxruntime as ort

SIZES = [(416, 416), (416, 288)]  # (width, height)
root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
model = onnx.load(os.path.join(root, "models", "yolox_nano.onnx"))
del model.graph.value_info[:]
for value in list(model.graph.input) + list(model.graph.output):
    for dim in value.type.tensor_type.shape.dim:
        dim.dim_param = "free"  # clears dim_value: any size
options = ort.SessionOptions()
options.intra_op_num_threads = int(os.environ.get("THREADS", "1"))
session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
frames = [cv2.imread(f) for f in sorted(glob.glob(os.path.join(root, "ped2", "testing", "frames", "01", "*.jpg")))[:60]]


def letterboxed(image, width, height):
    h, w = image.shape[:2]
    r = min(height / h, width / w)
    pad = np.full((height, width, 3), 114, np.uint8)
    pad[: int(h * r), : int(w * r)] = cv2.resize(image, (int(w * r), int(h * r)), interpolation=cv2.INTER_LINEAR)
    return pad.transpose(2, 0, 1)[None].astype(np.float32)


for width, height in SIZES:
    session.run(None, {"images": letterboxed(frames[0], width, height)})
    started = time.perf_counter()
    for frame in frames:
        session.run(None, {"images": letterboxed(frame, width, height)})
    seconds = (time.perf_counter() - started) / len(frames)
    print(f"onnxruntime {ort.__version__}, {options.intra_op_num_threads} thread(s), {width}x{height}: {seconds * 1000:.1f} ms/frame (letterbox and network)")
