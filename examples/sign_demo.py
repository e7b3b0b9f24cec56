"""The sign-language (fingerspelling) demo: ``python examples/sign_demo.py [SOURCE] [--out F]``.

The program lives in the ``signs`` plugin (``handsdk_signs.demo``) so that ``handsdk sign-demo``
runs the same code; see its docstring for the options.
"""

from handsdk_signs.demo import main

if __name__ == "__main__":
    raise SystemExit(main())
