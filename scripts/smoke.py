"""Smoke stage: load a model, run one prompt, capture one hook, show the next-token guess.

    python scripts/smoke.py [--model M] [--device D] [--hook NAME]
"""

from _cli import common_parser, user_errors


def main() -> None:
    p = common_parser(__doc__.splitlines()[0])
    p.add_argument("--hook", default=None, help="hook to capture (default: the middle layer's hook_resid_pre)")
    p.add_argument("--prompt", default=None, help="default: the IOI prompt")
    args = p.parse_args()
    with user_errors():
        from extract.smoke import IOI_PROMPT, smoke

        for line in smoke(args.model, args.device, args.hook, args.prompt or IOI_PROMPT):
            print(line)


if __name__ == "__main__":
    main()
