"""w2s-trust command line: ``python main.py fit --config configs/toy.yaml`` (see README)."""

from w2s.cli import main

if __name__ == "__main__":
    main()
