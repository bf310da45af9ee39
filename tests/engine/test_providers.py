"""The provider families: which serves an alias, and what each answers for itself."""

from __future__ import annotations

import os
import subprocess
import sys

from runner.protocol.models_file import ModelAlias
from runner.providers import context_window, family_name, provider_for
from tests.engine.conftest import REPO


def test_each_alias_goes_to_its_family():
    assert family_name(ModelAlias(model="sim/maker")) == "sim"
    assert family_name(ModelAlias(model="local/gemma-3-270m")) == "local"
    # openai/ and anthropic/ strings default to the native transport (conformance passes); any alias
    # may name litellm, and every other vendor goes through litellm
    assert family_name(ModelAlias(model="openai/gpt-4.1")) == "native"
    assert family_name(ModelAlias(model="anthropic/claude-sonnet-4-5")) == "native"
    assert family_name(ModelAlias(model="openai/gpt-4.1", transport="litellm")) == "litellm"
    assert family_name(ModelAlias(model="gemini/gemini-2.5-pro")) == "litellm"


def test_in_process_families_cost_nothing_and_answer_without_litellm():
    code = (
        "import sys\n"
        "from runner.protocol.models_file import ModelAlias\n"
        "from runner.providers import context_window, price_per_token, provider_for\n"
        "sim = ModelAlias(model='sim/maker')\n"
        "gemma = ModelAlias(model='local/gemma-3-270m')\n"
        "print(provider_for(sim).cost(sim, 10, 10), price_per_token(sim), price_per_token(gemma),\n"
        "      context_window(sim), context_window(gemma) > 0, provider_for(gemma).deterministic(gemma, {'seed': 1}),\n"
        "      provider_for(gemma).deterministic(gemma, {}), 'litellm' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["0.0", "(0.0,", "0.0)", "(0.0,", "0.0)", "None", "True", "True", "False",
                                  "False"], out.stdout + out.stderr


def test_the_alias_context_window_wins():
    assert context_window(ModelAlias(model="sim/maker", context_window=4096)) == 4096
    assert provider_for(ModelAlias(model="sim/maker")).deterministic(ModelAlias(model="sim/maker"))


def test_litellm_connection_limits_are_set_before_it_is_imported():
    """litellm's aiohttp transport reads its per-host cap (500 by default) at import: latitude sets it first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIOHTTP_CONNECTOR", "LATITUDE_CONNECTIONS"))}
    code = ("from runner.providers.litellm_ import connection_limits, litellm\n"
            "litellm()\n"
            "from litellm import constants\n"
            "print(connection_limits(), constants.AIOHTTP_CONNECTOR_LIMIT, constants.AIOHTTP_CONNECTOR_LIMIT_PER_HOST)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert out.stdout.split()[-2:] == ["8000", "2000"], out.stdout + out.stderr
    env["LATITUDE_CONNECTIONS_PER_HOST"] = "64"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert out.stdout.split()[-2:] == ["256", "64"], out.stdout + out.stderr
