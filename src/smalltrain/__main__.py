"""``python -m smalltrain``: the same CLI as the ``smalltrain`` command."""

from smalltrain.cli.main import main

if __name__ == "__main__":
    main()
