"""python -m legacy_models build OUT_DIR [--only mlp,cnn_bn]   (also: list)"""
import argparse
import sys

EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT = 0, 1, 2


def _parser():
    parser = argparse.ArgumentParser(prog="python -m legacy_models",
                                     description="Write real TF1 artifacts + goldens with the running TF.")
    commands = parser.add_subparsers(dest="command")
    build = commands.add_parser("build", help="build the zoo, e.g.: python -m legacy_models build /tmp/zoo")
    build.add_argument("out_dir", help="directory for <name>/ folders and manifest.json")
    build.add_argument("--only", help="comma-separated model names, e.g. mlp,lookup")
    commands.add_parser("list", help="print the model names")
    return parser


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:  # Python 3.6 argparse has no required subcommands
        parser.print_help()
        return EXIT_BAD_INPUT
    from legacy_models import zoo  # imports TensorFlow lazily, after argument errors are reported
    if args.command == "list":
        print("\n".join(zoo.MODELS))
        return EXIT_OK
    try:
        manifest = zoo.build(args.out_dir, args.only)
    except zoo.UnknownModel as exc:
        print("error: {}".format(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except zoo.SelfCheckError as exc:
        print("self-check failed: {}".format(exc), file=sys.stderr)
        return EXIT_MISMATCH
    print("wrote {} models ({} skipped) to {}".format(len(manifest["models"]), len(manifest["skipped"]),
                                                       args.out_dir))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
