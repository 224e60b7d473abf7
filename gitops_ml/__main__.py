"""`python -m gitops_ml` runs the command line."""

from gitops_ml.cli.main import main

if __name__ == "__main__":
    main()
