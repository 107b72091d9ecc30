"""API tests: the ZAPI v3.1 contract, through HTTP, against the app with a fake kernel."""

import pytest

# The expectations in `builders` assert; let pytest explain their failures.
pytest.register_assert_rewrite(f"{__name__}.builders")
