"""The main job: every stage on the embedded default model, in order.

    python scripts/run_all.py [--model M] [--device D]
"""

from _cli import common_parser, user_errors


def main() -> None:
    args = common_parser(__doc__.splitlines()[0]).parse_args()
    with user_errors():
        from extract.smoke import smoke

        print("== stage 0: smoke")
        for line in smoke(args.model, args.device):
            print(line)


if __name__ == "__main__":
    main()
