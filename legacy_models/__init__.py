"""A zoo of real TF1 artifacts, written by whatever TensorFlow runs this code, with golden outputs.

    python -m legacy_models build OUT_DIR [--only mlp,cnn_bn]

writes OUT_DIR/<name>/ for every model the running TensorFlow can build, and OUT_DIR/manifest.json:

    {"tf_version": "1.7.1", "python": "3.6.15",
     "models": [{"name": "mlp", "kind": "checkpoint", "path": "mlp", "checkpoint": "mlp/model.ckpt-6",
                 "inputs": {"x:0": {"dtype": "float32", "shape": [null, 8]}}, "outputs": ["probabilities:0", ...],
                 "signature": null, "golden": "mlp/golden.npz", "features": [...], "tf_version": "1.7.1"}, ...],
     "skipped": [{"name": "estimator", "reason": "..."}]}

kind / path (relative to OUT_DIR):
    checkpoint   -- a checkpoint directory: `checkpoint` file + model.ckpt-N.{meta,index,data-*} (V2 format)
    saved_model  -- a TF1 SavedModel directory (tag "serve"); `signature` is the default signature and
                    `signatures` maps every signature to its input/output keys and tensor names
    frozen_graph -- a frozen GraphDef file (weights as Consts), `path` names the .pb; no outputs recorded in it
    estimator    -- an Estimator model_dir; `inputs`/`outputs` are tensors of the latest model.ckpt-N.meta
                    (the TRAIN graph) that reproduce the goldens when fed after restoring that checkpoint
    frozen_graph -- a binary GraphDef with the weights as constants (`path` is the .pb file)

golden.npz keys are plain tensor names ("x:0", "rnn_out/output:0"): np.savez(path, **{"x:0": a}) stores
member "x:0.npy" and np.load(path)["x:0"] reads it back, in numpy 1.18 through 2.x. Inputs come from a seeded
numpy generator; outputs are what the running TF computed right after training. Every model is restored
from disk in a fresh tf.Graph after building and compared with its goldens; a mismatch fails the build.

`features` lists what the artifact exercises: the builder's own claims (batch_norm, optimizer slots, ...)
plus op-level facts read from the written graph (ref_variables = VariableV2, tf1_cond = Switch/Merge, ...).
"""

from legacy_models.zoo import MODELS, build  # noqa: F401
