"""Print, per tox env, the TF it ran, the TF-TRT generation chosen and pytest's summary; then one total line."""
import glob
import os
import re
import sys

SETUP_FAILURES = "--setup-failures" in sys.argv  # .ci/run asks: which envs never reached their commands?
root = [arg for arg in sys.argv[1:] if not arg.startswith("--")][0]


def setup_failures():
    """Envs tox made but whose commands never ran (an install step failed), each with its last step's log."""
    found = []
    for env in sorted(name for name in os.listdir(root) if not name.startswith(".")):
        if glob.glob(os.path.join(root, env, "log", "*commands*.log")):
            continue
        steps = sorted(glob.glob(os.path.join(root, env, "log", "*.log")),
                       key=lambda path: int(os.path.basename(path).split("-", 1)[0]))
        if steps:
            found.append((env, steps[-1]))
    return found


if SETUP_FAILURES:
    # One env per line for the shell, then each failed step's last lines on stderr: the reason a download or
    # a pin failed is otherwise lost with the CI machine's .tox directory.
    for env, log in setup_failures():
        print(env)
        tail = open(log, errors="replace").read().splitlines()[-15:]
        sys.stderr.write("--- {}: last lines of {}\n{}\n".format(env, log, "\n".join(tail)))
    sys.exit(0)

totals = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
failed_envs = []
for env in sorted(name for name in os.listdir(root) if not name.startswith(".")):
    logs = sorted(glob.glob(os.path.join(root, env, "log", "*commands*.log")))
    if not logs:
        steps = sorted(glob.glob(os.path.join(root, env, "log", "*.log")))
        if steps:  # tox made the env but never reached its commands: say which step stopped it
            failed_envs.append(env)
            print("{:14} FAILED in {} (no command ran; see {})".format(
                env, os.path.basename(steps[-1]).split("-", 1)[-1][:-4], steps[-1]))
        continue
    text = "\n".join(open(path, errors="replace").read() for path in logs)
    tf = re.search(r"^tensorflow\s+(\S+)", text, re.M)
    gen = re.search(r"^tf_trt_generation\s+(\S+)", text, re.M)
    reason = re.search(r"^tensorrt_reason\s+(.*)$", text, re.M)
    onnx = re.search(r"^onnx\s+(.*)$", text, re.M)  # `migrate env`: the onnx extra's versions or why not
    summary = re.findall(r"^=*\s*(\d+ (?:passed|failed|skipped|error).*?)\s*=*$", text, re.M)
    print("{:14} TF {:8} TF-TRT {:13} | {}".format(env, tf.group(1) if tf else "?", gen.group(1) if gen else "?",
                                                   summary[-1] if summary else "(no pytest run: zoo builder)"))
    if reason:
        print("{:14} TensorRT: {}".format("", reason.group(1)))
    if onnx:
        print("{:14} onnx extra: {}".format("", onnx.group(1)[:110]))
    for count, kind in re.findall(r"(\d+) (passed|failed|skipped|errors?)", summary[-1] if summary else ""):
        totals["error" if kind.startswith("error") else kind] += int(count)
if failed_envs:
    print("envs that never ran their commands: " + ", ".join(failed_envs))
print("{passed} passed, {failed} failed, {error} errors, {skipped} skipped".format(**totals))
