"""Builders of frozen GraphDefs (weights as Consts, no checkpoint), as third parties ship them
(`frozen_inference_graph.pb`): the graph alone, written with tf.train.write_graph, no outputs recorded.

    detection    a detector head: per-anchor features -> scores, boxes, landmarks; score threshold, v1 while
                 loop refining landmarks, non-max suppression; two scalar threshold inputs with defaults.
                 Three sinks, the outputs. Random inputs give no detection (scores stay below the default
                 threshold, as noise images do in a real detector); the golden anchors do.
    two_softmax  one trunk, two softmax heads, nothing else: the graph's only two sinks.
"""
import numpy as np

from legacy_models.common import Built, graph_session, input_specs, rng, run_golden, v1

FROZEN_FILE = "frozen_inference_graph.pb"
ANCHOR_FEATURES = 6
LANDMARKS = 10  # five (y, x) points per detection
MAX_DETECTIONS = 8


def _const(values, name):
    return v1().constant(np.asarray(values, dtype="float32"), name=name)


def _write(sess, model_dir, name, inputs, outputs, golden, features, optional_inputs=None):
    tf1 = v1()
    tf1.train.write_graph(sess.graph.as_graph_def(), model_dir, FROZEN_FILE, as_text=False)
    entry = {"kind": "frozen_graph", "path": "{}/{}".format(name, FROZEN_FILE), "inputs": input_specs(inputs),
             "outputs": [t.name for t in outputs], "signature": None, "features": ["frozen_graph"] + features}
    if optional_inputs:
        entry["optional_inputs"] = optional_inputs
    return Built(entry, golden, run_golden(sess, inputs, outputs, golden))


def _golden_anchors():
    """12 anchors: 5 strong ones (3 overlapping boxes around one object, 2 around another) and 7 of noise."""
    features = rng(101).randn(12, ANCHOR_FEATURES).astype("float32") * 0.3
    strong = [0, 1, 2, 5, 6]
    features[strong, :2] += 4.0                     # high score
    features[[0, 1, 2], 2:4] = [[0.2, 0.2], [0.22, 0.21], [0.19, 0.23]]   # near-identical boxes: NMS keeps one
    features[[5, 6], 2:4] = [[-1.5, 1.0], [1.4, -1.2]]                    # two apart: both kept
    return features


def build_detection(model_dir, name):
    """anchors[None, 6] -> scores (sigmoid), boxes, landmarks; score_threshold / iou_threshold inputs with
    defaults; where(score > threshold) -> NonMaxSuppressionV2 -> gather; landmarks refined by a v1 while loop.
    Outputs detection_scores[k], detection_boxes[k, 4], detection_landmarks[k, 10], k <= 8."""
    tf1 = v1()
    golden = {"anchors:0": _golden_anchors()}
    weights = rng(102)
    with graph_session() as sess:
        anchors = tf1.placeholder(tf1.float32, [None, ANCHOR_FEATURES], name="anchors")
        score_threshold = tf1.placeholder_with_default(0.5, [], name="score_threshold")
        iou_threshold = tf1.placeholder_with_default(0.5, [], name="iou_threshold")
        with tf1.name_scope("head"):
            score_w = _const([[0.6], [0.6], [0.05], [0.05], [-0.05], [0.05]], "score_kernel")
            logits = tf1.reshape(tf1.matmul(anchors, score_w) - 4.0, [-1])
            scores = tf1.sigmoid(logits)
            center = tf1.matmul(anchors, _const(np.eye(ANCHOR_FEATURES, 2, -2), "center_kernel"))
            size = 0.5 + tf1.exp(0.1 * tf1.matmul(anchors, _const(weights.randn(ANCHOR_FEATURES, 2), "size_k")))
            boxes = tf1.concat([center - size / 2.0, center + size / 2.0], axis=1)
            landmarks = tf1.matmul(anchors, _const(weights.randn(ANCHOR_FEATURES, LANDMARKS) * 0.3, "lm_kernel"))
        with tf1.name_scope("postprocess"):
            keep = tf1.reshape(tf1.where(scores > score_threshold), [-1])
            kept_scores = tf1.gather(scores, keep)
            kept_boxes = tf1.gather(boxes, keep)
            kept_landmarks = tf1.gather(landmarks, keep)
            selected = tf1.image.non_max_suppression(kept_boxes, kept_scores, MAX_DETECTIONS,
                                                     iou_threshold=iou_threshold)
            refine = _const(weights.randn(LANDMARKS, LANDMARKS) * 0.2, "refine_kernel")

            def body(step, points):
                return step + 1, points + 0.1 * tf1.tanh(tf1.matmul(points, refine))

            _, refined = tf1.while_loop(lambda step, points: step < 3, body,
                                        [tf1.constant(0), tf1.gather(kept_landmarks, selected)])
        out_scores = tf1.identity(tf1.gather(kept_scores, selected), name="detection_scores")
        out_boxes = tf1.identity(tf1.gather(kept_boxes, selected), name="detection_boxes")
        out_landmarks = tf1.identity(refined, name="detection_landmarks")
        built = _write(sess, model_dir, name, [anchors], [out_scores, out_boxes, out_landmarks], golden,
                       ["multi_output", "non_max_suppression", "score_threshold", "threshold_inputs",
                        "placeholder_with_default", "empty_outputs_for_random_inputs"],
                       optional_inputs={"score_threshold:0": {"dtype": "float32", "shape": [], "default": 0.5},
                                        "iou_threshold:0": {"dtype": "float32", "shape": [], "default": 0.5}})
    kept = built.golden_outputs["detection_scores:0"].shape[0]
    if not 2 <= kept < 5:  # the goldens must hold detections, and NMS must have suppressed some
        raise AssertionError("detection goldens hold {} detections".format(kept))
    return built


def build_two_softmax(model_dir, name):
    """x[None, 8] -> 12 relu -> two softmax heads (head_a/probs[3], head_b/probs[4]): the only two sinks."""
    tf1 = v1()
    golden = {"x:0": rng(111).randn(5, 8).astype("float32")}
    weights = rng(112)
    with graph_session() as sess:
        x = tf1.placeholder(tf1.float32, [None, 8], name="x")
        hidden = tf1.nn.relu(tf1.matmul(x, _const(weights.randn(8, 12) * 0.4, "trunk/kernel")) +
                             _const(weights.randn(12) * 0.1, "trunk/bias"))
        heads = []
        for head, classes in (("head_a", 3), ("head_b", 4)):
            with tf1.name_scope(head):
                logits = tf1.matmul(hidden, _const(weights.randn(12, classes) * 0.4, "kernel"))
                heads.append(tf1.nn.softmax(logits, name="probs"))
        return _write(sess, model_dir, name, [x], heads, golden, ["two_softmax_sinks", "multi_output"])
