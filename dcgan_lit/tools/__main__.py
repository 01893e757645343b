"""``python -m dcgan_lit.tools``: lists the tools and how to run them."""

from dcgan_lit.tools import TOOLS


def main() -> None:
    print("dcgan-lit tools: python -m dcgan_lit.tools.<name> [key=value ...]  (each takes --help)\n")
    for name, summary in TOOLS.items():
        print(f"  {name:<13} {summary}")


if __name__ == "__main__":
    main()
