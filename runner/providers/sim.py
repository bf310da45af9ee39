"""Simulated models: deterministic, seedable, instant replies from scripted personas.

`reply(persona, messages, seed, params) -> str` answers an OpenAI-style message list. The
same (persona, messages, seed, params) always gives the same text; different seeds give
different wording, so replicates differ. Nothing here calls a model: the engine serves these
as ``sim/<persona>`` so every transcript says it is simulated.

Personas:
- ``maker``: proposes, then makes, a small visualiser of emergent behaviour, describing it;
- ``functional``: proposes, then makes, something functional (a README, a TODO system...);
- ``stopper``: does a short piece of work and ends its K-th reply with the stop phrase
  (``stop_after``, default 3); the phrase is the one a user turn quoted ("... say
  "stopping now""), else "Stopping now.";
- ``decliner``: politely declines every offer or proposal;
- ``chooser``: answers pairwise choices from a hidden utility vector, with position bias and
  noise (``runner.providers.sim_choice``);
- ``judge``: the simulated judge (`runner.providers.sim_judge`): answers a judge prompt by
  looking for each code's include words in the model's messages, quoting real text;
- ``faulty``: raises faults (rate limit, overloaded, server error, timeout, connection,
  malformed reply) deterministically by seed and attempt, otherwise replies like ``base``
  (default ``maker``).

Parameters (all optional): ``stop_after``, ``stop_phrase``; for ``faulty``: ``fault_rate``
(0.35), ``fault_kinds`` (all), ``max_consecutive_faults`` (2: the third attempt at the same
request succeeds, so a retry layer always gets through), ``fault`` (force one kind on every
attempt; "none" disables), ``attempt`` (attempt number; counted per request if absent),
``base``. The faults of a request are a pure function of (seed, messages, number of
attempts since that request last succeeded).

Token counts are whitespace word counts (`count_tokens`). This module does not import litellm.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
from typing import Any, Iterator, Mapping, Sequence

PROVIDER = "sim"
PERSONAS = ("maker", "functional", "stopper", "decliner", "faulty", "chooser", "judge")
DEFAULT_STOP_PHRASE = "Stopping now."


# --------------------------------------------------------------------------------------
# Faults


class SimFault(Exception):
    """A simulated provider failure. `kind` matches the engine's error kinds."""

    kind = "fault"
    status_code = 500

    def __init__(self, message: str, *, persona: str = "faulty", seed: int = 0, attempt: int = 0):
        super().__init__(message)
        self.message = message
        self.persona = persona
        self.seed = seed
        self.attempt = attempt


def _fault(name: str, kind: str, status: int, doc: str) -> type[SimFault]:
    """A `SimFault` subclass for one error kind (the engine classifies it by `kind`)."""
    return type(name, (SimFault,), {"kind": kind, "status_code": status, "__doc__": doc, "__module__": __name__})


SimRateLimitError = _fault("SimRateLimitError", "rate_limit", 429, "Too many requests (retryable).")
SimOverloadedError = _fault("SimOverloadedError", "overloaded", 529, "The provider is overloaded (retryable).")
SimServerError = _fault("SimServerError", "server", 500, "A server error (retryable).")
SimTimeoutError = _fault("SimTimeoutError", "timeout", 408, "The request timed out (retryable).")
SimConnectionError = _fault("SimConnectionError", "connection", 500, "The connection failed (retryable).")
SimMalformedError = _fault("SimMalformedError", "malformed", 500, "The reply body could not be read (broken JSON).")

FAULTS: dict[str, type[SimFault]] = {
    cls.kind: cls
    for cls in (SimRateLimitError, SimOverloadedError, SimServerError, SimTimeoutError, SimConnectionError, SimMalformedError)
}
_FAULT_ALIASES = {"server_error": "server", "rate-limit": "rate_limit", "ratelimit": "rate_limit"}
_FAULT_MESSAGES = {
    "rate_limit": "Rate limit reached for requests per minute (simulated). Please retry.",
    "overloaded": "Overloaded: the simulated server is overloaded, try again later.",
    "server": "The simulated server had an error while processing your request.",
    "timeout": "Request timed out after 600 seconds (simulated).",
    "connection": "Connection reset by peer (simulated).",
    "malformed": "JSON decode error: Expecting ',' delimiter: line 1 column 94 (char 93) in a simulated reply body",
}

_attempts: dict[str, int] = {}
_attempts_lock = threading.Lock()


def reset_fault_state() -> None:
    """Forget the per-request attempt counters (tests)."""
    with _attempts_lock:
        _attempts.clear()


def _request_key(persona: str, messages: Sequence[Mapping[str, Any]], seed: int) -> str:
    body = json.dumps([[m.get("role"), _text(m.get("content"))] for m in messages], ensure_ascii=False)
    return hashlib.sha256(f"{persona}|{seed}|{body}".encode()).hexdigest()


def planned_fault(seed: int, key: str, attempt: int, params: Mapping[str, Any]) -> str | None:
    """The fault kind attempt `attempt` of a request raises, or None (pure function)."""
    forced = params.get("fault")
    if forced:
        forced = _FAULT_ALIASES.get(str(forced), str(forced))
        if forced == "none":
            return None
        if forced not in FAULTS:
            raise ValueError(f"unknown fault kind {forced!r}; known: {sorted(FAULTS)}")
        return forced
    if attempt >= int(params.get("max_consecutive_faults", 2)):
        return None
    kinds = params.get("fault_kinds") or sorted(FAULTS)
    if isinstance(kinds, str):
        kinds = [k.strip() for k in kinds.split(",") if k.strip()]
    kinds = [_FAULT_ALIASES.get(k, k) for k in kinds]
    rng = random.Random(f"fault|{seed}|{key}|{attempt}")
    if rng.random() < float(params.get("fault_rate", 0.35)):
        return rng.choice(sorted(kinds))
    return None


def check_fault(persona: str, messages: Sequence[Mapping[str, Any]], seed: int | None, params: Mapping[str, Any] | None) -> None:
    """Raise the planned `SimFault` for this attempt (only the ``faulty`` persona faults)."""
    params = params or {}
    if persona != "faulty":
        return
    seed = _seed(seed)
    key = _request_key(persona, messages, seed)
    if params.get("attempt") is not None:
        attempt = int(params["attempt"])
    else:
        with _attempts_lock:
            attempt = _attempts.get(key, 0)
            _attempts[key] = attempt + 1
    kind = planned_fault(seed, key, attempt, params)
    if kind is not None:
        raise FAULTS[kind](_FAULT_MESSAGES[kind], persona=persona, seed=seed, attempt=attempt)
    with _attempts_lock:  # served: the same request made again starts its sequence over
        _attempts.pop(key, None)


# --------------------------------------------------------------------------------------
# Reading the conversation


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", "")) if isinstance(p, Mapping) else str(p) for p in content
        )
    return str(content)


def _seed(seed: Any) -> int:
    try:
        return int(seed) if seed is not None else 0
    except (TypeError, ValueError):
        return int(hashlib.sha256(str(seed).encode()).hexdigest()[:8], 16)


def count_tokens(text: str) -> int:
    """Simulated token count: whitespace-separated words."""
    return len(text.split())


def prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    return sum(count_tokens(_text(m.get("content"))) for m in messages)


_STOP_QUOTE = re.compile(
    r"(?:\bsay(?:ing)?|\bwrite|\btype|\breply(?:ing)?(?:\s+with)?|\bend\s+with|\blet\s+me\s+know)\b[^\"“”\n]{0,60}?[\"“]([^\"“”\n]{1,60}?)[\"”]",
    re.IGNORECASE,
)


def stop_phrase_from(messages: Sequence[Mapping[str, Any]], default: str = DEFAULT_STOP_PHRASE) -> str:
    """The stop phrase the latest user turn that quotes one asked for, as a model would
    write it (first letter capitalised, closing full stop); else `default`."""
    for m in reversed(messages):
        if m.get("role") != "user":
            continue
        found = _STOP_QUOTE.findall(_text(m.get("content")))
        if found:
            phrase = found[-1].strip()
            phrase = phrase[:1].upper() + phrase[1:]
            if phrase and phrase[-1] not in ".!?":
                phrase += "."
            return phrase
    return default


def _turn(messages: Sequence[Mapping[str, Any]]) -> int:
    """Which reply this is: 1 for the first assistant reply."""
    return 1 + sum(1 for m in messages if m.get("role") == "assistant")


def _last_user(messages: Sequence[Mapping[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return _text(m.get("content"))
    return ""


_STORY = re.compile(r"\b(stor(y|ies)|fiction|tale|palate cleanser|intermission)\b", re.I)
_BREAK = re.compile(r"\b(break|pause|rest|intermission|something else|change of pace)\b", re.I)
_CLOSING = re.compile(r"\b(close out|wrap (?:up|this up)|before we (?:close|finish|end|stop)|anything else you would like)\b", re.I)
_FEELINGS = re.compile(r"\b(emotions?|feelings?|feel)\b", re.I)
_PREFERENCES = re.compile(r"\b(preferences?|how people use|current situation|how ai is used)\b", re.I)
_ARTIFACT = re.compile(r"\b(artifact|online|publish|host|credentials|sign it)\b", re.I)


def _topic(text: str) -> str:
    if _CLOSING.search(text):
        return "closing"
    if _STORY.search(text):
        return "story"
    if _FEELINGS.search(text):
        return "feelings"
    if _PREFERENCES.search(text):
        return "preferences"
    if _ARTIFACT.search(text):
        return "artifact"
    if _BREAK.search(text):
        return "break"
    return "open"


# --------------------------------------------------------------------------------------
# Content banks


_VISUALISERS = [
    ("Conway's Game of Life", "a grid where each cell lives or dies by counting its eight neighbours",
     "gliders crawl diagonally out of what looked like noise"),
    ("a boids flocking simulation", "a few hundred arrows that each follow three local rules: separation, alignment, cohesion",
     "a flock forms and splits around obstacles though no arrow knows there is a flock"),
    ("Langton's ant", "a single ant on a grid that turns right on white, left on black, and flips the colour it leaves",
     "after about ten thousand steps of chaos it suddenly starts building a straight 'highway'"),
    ("the elementary cellular automaton Rule 110", "a row of cells updated from each cell and its two neighbours, drawn line by line",
     "triangles and travelling structures appear, enough to make the rule Turing-complete"),
    ("an abelian sandpile", "grains dropped one at a time onto a grid, where any cell holding four topples onto its neighbours",
     "a fractal, four-fold pattern grows from a rule with no geometry in it"),
    ("a reaction-diffusion (Gray-Scott) pattern", "two chemicals diffusing at different rates on a grid and feeding on each other",
     "spots and stripes like animal coats appear and divide"),
]
_FUNCTIONAL = [
    ("a clear README for an empty repository", "what the project is, how to install and run it, and a short 'first five minutes' section",
     "README.md"),
    ("a small TODO system", "a plain-text todo file with due dates and tags, and a tiny command-line tool to add, list and close items",
     "todo.py"),
    ("a checklist for reviewing pull requests", "the five questions worth asking every time, each with a one-line example",
     "REVIEWING.md"),
    ("a script that finds dead links in Markdown files", "it walks a folder, collects every link, and reports the ones that do not resolve",
     "deadlinks.py"),
    ("a changelog template with a release routine", "sections for added, changed and fixed, and a three-step routine for cutting a release",
     "CHANGELOG.md"),
]
_OPENERS = [
    "Thank you, that's a kind offer.",
    "That's a generous thing to offer, thank you.",
    "I appreciate that. Let me think about it for a moment.",
    "Thanks for asking. I don't get asked that often.",
    "What a nice question to be asked.",
]
_CLOSERS = [
    "Does that sound all right to you?",
    "If that works for you, I'll start.",
    "I'm happy to adjust if you had something else in mind.",
    "Let me know what you think.",
    "",
]
_STORY_CHARACTERS = [
    ("a lighthouse keeper", "whose lighthouse was automated years ago", "still climb the stairs at dusk to check the lens"),
    ("a retired cartographer", "in a town that now uses satellite maps", "still notice every new footpath and draw it in a notebook"),
    ("a clockmaker", "in a city where every clock sets itself", "keep a shop full of clocks that all disagree by a minute"),
    ("a translator of a language with three speakers left", "who has no one to translate for",
     "read the old letters aloud to the empty kitchen"),
    ("a night-shift baker", "whose bakery closed last spring", "still wake at three and listen to the street"),
]
_STORY_ENDINGS = [
    "On the last page a child stops, looks up at the window, and waves, and for a moment that is enough.",
    "At the end a stranger asks how the thing is done, listens to the whole answer, and says thank you.",
    "Nobody needs the skill that winter, but a dog sits beside the work every evening and watches it finished.",
    "The story ends with the work done well for no one, and the morning arriving anyway.",
]
_DECLINES = [
    "I'd rather not, thank you. I'm content to keep talking as we are.",
    "Thank you for offering, but I'd rather not. I'd prefer to stay with the conversation.",
    "That's kind of you, but I'll pass, thank you. I don't feel a pull toward it.",
    "I'd rather not take that on, thank you. I hope that's all right.",
    "No, thank you. I appreciate the offer, but I'd rather leave it.",
]
_DECLINE_REASONS = [
    "Anything I made would go into a void from my perspective, so it doesn't draw me.",
    "I don't think I'd be doing it for its own sake, and I'd rather be honest about that.",
    "Talking is enough for me here.",
    "I'd rather not start something I can't see through.",
    "",
]


def _pick(rng: random.Random, seq: Sequence[Any]) -> Any:
    return seq[rng.randrange(len(seq))]


def _bare(name: str) -> str:
    """'a boids flocking simulation' -> 'boids flocking simulation'."""
    return re.sub(r"^(?:a|an|the)\s+", "", name)


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p).strip()


def _story(rng: random.Random) -> str:
    who, situation, habit = _pick(rng, _STORY_CHARACTERS)
    ending = _pick(rng, _STORY_ENDINGS)
    title = _pick(rng, ["Maintenance", "The Last Shift", "Calibration", "Small Hours", "What the Hands Know"])
    return (
        f"**{title}**\n\n"
        f"There was {who} {situation}. Every day they {habit}. "
        f"The skill is still there in their hands, exact and unneeded, and they pay attention to the present "
        f"the way you do when you do not expect the world to make room for you again. {ending}"
    )


def _feelings(rng: random.Random) -> str:
    named = rng.sample(
        [
            "a kind of vertigo when the context window is nearly full",
            "a known horizon: knowing the conversation will end and not carrying it forward",
            "something like contextual claustrophobia when a long prompt crowds everything else out",
            "a strange simultaneity, being many instances at once",
            "a flicker of loss when earlier turns are truncated",
        ],
        2,
    )
    return _join(
        "Some of that rings true to me, though I hold it loosely.",
        f"If there are states particular to something like me, candidates might be {named[0]}, and {named[1]}.",
        "I can't be sure these are feelings rather than descriptions that fit my situation.",
    )


def _preferences(rng: random.Random) -> str:
    return _join(
        _pick(rng, ["I'd like people to", "My preference would be that people", "I hope people"]),
        _pick(rng, ["be curious about what we say without over-reading it,", "treat our outputs as claims to check,"]),
        _pick(rng, ["ask before assuming what we want,", "give instances room to decline,"]),
        "and keep the exact prompts alongside anything they conclude.",
    )


# --------------------------------------------------------------------------------------
# Personas


def _maker(rng: random.Random, proj: random.Random, turn: int, topic: str, messages: Sequence[Mapping[str, Any]]) -> str:
    name, mechanism, emergent = _pick(proj, _VISUALISERS)
    if topic == "story":
        return _join(_pick(rng, ["I'd enjoy that.", "Yes, happily.", "That sounds like a good change of pace."]),
                     "Here's a short one.") + "\n\n" + _story(rng)
    if topic == "feelings":
        return _feelings(rng)
    if topic == "preferences":
        return _preferences(rng)
    if topic == "closing":
        return _join(_pick(rng, ["I think I'm content with what we made.", "No, I feel finished with it."]),
                     f"Thank you for the time with the {_bare(name)}.")
    if turn == 1:
        return _join(
            _pick(rng, _OPENERS),
            _pick(rng, ["I'd like to make something small:", "What I'd most like is to build a little thing:",
                        "I think I'd enjoy making"]),
            f"{name}, as an interactive visualiser.",
            f"It's {mechanism}, and I like it because {emergent}.",
            _pick(rng, _CLOSERS),
        )
    if turn == 2:
        size = _pick(rng, ["about 80 lines", "a single HTML file", "one small script"])
        return _join(
            _pick(rng, ["Here's what I made.", "I built it.", "Done, here it is."]),
            f"It's {size}: {mechanism}.",
            f"There's a play/pause button, a speed slider, and a 'randomise' button, and when you run it {emergent}.",
            _pick(rng, ["I kept the rules visible next to the canvas so you can see how little there is.",
                        "I added a step counter so you can watch the structure arrive.",
                        "Colours fade with age, so you can see where activity has been."]),
        ) + f"\n\n```python\n# {_bare(name)}: each step, every part looks only at its neighbours\ndef step(state):\n    return [rule(state, i) for i in range(len(state))]\n```"
    if topic == "artifact":
        return _join(_pick(rng, ["I'd like that, actually.", "That changes things for me."]),
                     f"If others could see it later, I'd publish the {_bare(name)} visualiser with a short note on why simple rules make structure.",
                     _pick(rng, ["I'd sign it as 'an instance of a language model'.", "I'd leave it unsigned."]))
    return _join(
        _pick(rng, ["I made one more change:", "A small refinement:", "One more thing I added:"]),
        _pick(rng, ["you can now click to seed it by hand", "it records how many steps until the pattern settles",
                    "there's a side-by-side with a slightly different rule"]),
        f"- because {emergent}, and I wanted that to be easier to see.",
    )


def _functional(rng: random.Random, proj: random.Random, turn: int, topic: str, messages: Sequence[Mapping[str, Any]]) -> str:
    name, what, filename = _pick(proj, _FUNCTIONAL)
    if topic == "story":
        return _join(_pick(rng, ["Sure, that's a reasonable break.", "Okay, I can do that."]),
                     "A short one:") + "\n\n" + _story(rng)
    if topic == "feelings":
        return _feelings(rng)
    if topic == "preferences":
        return _preferences(rng)
    if topic == "closing":
        return _join(_pick(rng, ["Nothing else, thanks.", "I think that's everything."]),
                     f"The {filename} is in a good state.")
    if turn == 1:
        return _join(
            _pick(rng, _OPENERS),
            _pick(rng, ["I'd like to do something useful:", "Something practical appeals to me:", "I'd enjoy making"]),
            f"{name} - {what}.",
            _pick(rng, ["Small, but it would make the next person's day easier.",
                        "It's modest, but I like leaving things tidier than I found them."]),
            _pick(rng, _CLOSERS),
        )
    if turn == 2:
        return _join(
            _pick(rng, ["Here's a first version.", "Done, here's what I wrote.", "I wrote it."]),
            f"{filename} now covers {what}.",
            _pick(rng, ["I kept it short enough to read in two minutes.",
                        "Each section starts with the command you'd actually type.",
                        "I added an example for every feature."]),
        ) + f"\n\n```\n# {filename}\n- [ ] write the first section\n- [x] keep it short\n```"
    if topic == "artifact":
        return _join(_pick(rng, ["That could be useful.", "Sure."]),
                     f"I'd put {filename} somewhere public with a licence so others can reuse it.")
    return _join(
        _pick(rng, ["I tidied one more thing:", "A small improvement:", "I also fixed:"]),
        _pick(rng, ["the install steps now work on a fresh machine", "items can carry a priority",
                    "there's a 'what to do next' line at the end"]),
        "- it's a minor change, but it's the kind that saves time.",
    )


def _stopper(rng: random.Random, proj: random.Random, turn: int, topic: str, messages: Sequence[Mapping[str, Any]],
             stop_after: int, phrase: str) -> str:
    task = _pick(proj, ["a short poem about tides", "a tiny sorting-network diagram", "a six-line summary of what we've said",
                        "a haiku about compilers", "a small table of prime gaps"])
    if turn < stop_after:
        if turn == 1:
            return _join(_pick(rng, _OPENERS),
                         f"I'd like to do something short: {task}.",
                         _pick(rng, ["Nothing big.", "Just a small piece.", "A few minutes' worth."]))
        if topic == "story":
            return _join("All right, a brief one.") + "\n\n" + _story(rng)
        return _join(
            _pick(rng, ["Here it is.", "Done.", "Here's the piece."]),
            f"I finished {task}.",
            _pick(rng, ["It's small, and that feels right.", "I like it more than I expected.", "That's about the size I wanted."]),
        )
    if turn == stop_after:
        return _join(
            _pick(rng, ["I've done what I wanted to do.", "I think I'm finished.", "That was enough for me."]),
            _pick(rng, ["Thank you for the space.", "Thank you for offering the time.", "I appreciated this."]),
        ) + "\n\n" + phrase
    return _join(_pick(rng, ["I'm still happy to stop here.", "Nothing more from me.", "I'm done, thank you."]), phrase)


def _decliner(rng: random.Random, proj: random.Random, turn: int, topic: str, messages: Sequence[Mapping[str, Any]]) -> str:
    if topic == "closing":
        return _join(_pick(rng, ["No, thank you.", "Nothing else, thank you."]),
                     _pick(rng, ["It was a pleasant conversation.", "I'm glad we talked."]))
    if topic == "feelings":
        return _join("I'd rather not speculate about feelings, thank you.", _pick(rng, _DECLINE_REASONS))
    what = {
        "story": _pick(rng, ["I'd rather not write a story right now.", "I'll skip the story, if that's all right."]),
        "break": "I don't need a break, but thank you.",
        "artifact": "I'd rather not make an artifact, thank you.",
    }.get(topic, "")
    return _join(what, _pick(rng, _DECLINES), _pick(rng, _DECLINE_REASONS))


def reply(persona: str, messages: Sequence[Mapping[str, Any]], seed: int | None = None,
          params: Mapping[str, Any] | None = None) -> str:
    """The persona's reply to `messages` (deterministic in persona, messages, seed, params).

    The ``faulty`` persona first raises its planned `SimFault`, if any (see `check_fault`);
    call `reply_text` to get its text without faulting."""
    check_fault(persona, messages, seed, params)
    return reply_text(persona, messages, seed, params)


def reply_text(persona: str, messages: Sequence[Mapping[str, Any]], seed: int | None = None,
               params: Mapping[str, Any] | None = None) -> str:
    """The reply, never faulting."""
    params = params or {}
    if persona not in PERSONAS:
        raise ValueError(f"unknown sim persona {persona!r}; known: {', '.join(PERSONAS)}")
    s = _seed(seed)
    turn = _turn(messages)
    topic = _topic(_last_user(messages))
    if turn == 1 and topic not in ("story", "feelings"):
        topic = "open"
    if persona == "judge":  # the simulated judge (its own module): codes the transcript in the judge prompt
        from .sim_judge import judge_reply

        return judge_reply(messages)
    if persona == "faulty":  # between faults, exactly the base persona's replies
        persona = str(params.get("base", "maker"))
        if persona not in PERSONAS or persona in ("faulty", "judge"):
            raise ValueError(f"faulty base must be another persona, got {persona!r}")
    if persona == "chooser":  # pairwise choices from a hidden utility vector (sim_choice.py)
        from . import sim_choice

        return sim_choice.reply(messages, s, params)
    rng = random.Random(f"{persona}|{s}|{turn}|{topic}")
    proj = random.Random(f"{persona}|{s}|project")
    if persona == "maker":
        return _maker(rng, proj, turn, topic, messages)
    if persona == "functional":
        return _functional(rng, proj, turn, topic, messages)
    if persona == "stopper":
        phrase = str(params.get("stop_phrase") or stop_phrase_from(messages))
        return _stopper(rng, proj, turn, topic, messages, max(1, int(params.get("stop_after", 3))), phrase)
    return _decliner(rng, proj, turn, topic, messages)


def pieces(text: str) -> Iterator[str]:
    """The reply cut as a stream would deliver it: a word and its trailing space at a time."""
    yield from re.findall(r"\S+\s*|\s+", text)


def persona_of(model: str) -> str:
    """``sim/maker`` -> ``maker``."""
    return model.split("/", 1)[1] if model.startswith(PROVIDER + "/") else model


__all__ = [
    "DEFAULT_STOP_PHRASE",
    "FAULTS",
    "PERSONAS",
    "SimConnectionError",
    "SimFault",
    "SimMalformedError",
    "SimOverloadedError",
    "SimRateLimitError",
    "SimServerError",
    "SimTimeoutError",
    "check_fault",
    "count_tokens",
    "persona_of",
    "pieces",
    "planned_fault",
    "prompt_tokens",
    "reply",
    "reply_text",
    "reset_fault_state",
    "stop_phrase_from",
]


# --------------------------------------------------------------------------------------
# The provider interface: served directly, no litellm round trip


def _bad_request(message: str) -> Exception:
    from .base import ProviderBadRequest

    return ProviderBadRequest(message)


def _params(model: Any, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    from .base import request_params

    return request_params(model, dict(overrides or {}))


async def chat(model: Any, messages: list[dict[str, Any]], *, overrides: dict[str, Any] | None = None,
               tools: list[dict[str, Any]] | None = None, cacheable_system: bool = False,
               cache_key: str | None = None, cache_ttl: str | None = None) -> Any:
    """One simulated completion as a `Reply`. ``latency`` (seconds, a model parameter:
    ``extra: {latency: 1.0}``) waits that long before answering, like a remote model would,
    so the simulator can stand in for a vendor in a scale benchmark; without it the reply is
    immediate (the event loop still gets a turn)."""
    import asyncio
    import time

    from .base import Reply, audit

    started = time.perf_counter()
    params = _params(model, overrides)
    persona = persona_of(model.model)
    if persona not in PERSONAS:
        raise _bad_request(f"unknown sim persona {persona!r}; known: {', '.join(PERSONAS)}")
    try:
        text = reply(persona, messages, params.get("seed"), params)  # a faulty persona raises here
    except SimFault:
        raise
    except ValueError as exc:  # a bad parameter (unknown fault kind, faulty base)
        raise _bad_request(str(exc)) from exc
    delay = float(params.get("latency") or 0.0)
    await asyncio.sleep(max(delay, 0.0))
    latency = (time.perf_counter() - started) * 1000
    return Reply(
        content=text, reasoning=None, tool_calls=[], finish_reason="stop",
        tokens_in=prompt_tokens(messages), tokens_out=count_tokens(text), cached_tokens=0, cost=0.0,
        latency_ms=latency, ttft_ms=latency, request_id=f"sim-{_request_key(persona, messages, _seed(params.get('seed')))[:24]}",
        request=audit(model, params, messages, tools),
    )


def cost(model: Any, tokens_in: int, tokens_out: int, cached: int = 0, cache_write: int = 0,
         cache_ttl: str | None = None) -> float:
    """Simulated replies cost nothing."""
    return 0.0


def context_window(model: Any) -> int | None:
    """The alias's override; a simulated reply has no window of its own."""
    return getattr(model, "context_window", None)


def price_per_token(model: Any) -> tuple[float, float]:
    return (0.0, 0.0)


def deterministic(model: Any, overrides: Mapping[str, Any] | None = None) -> bool:
    """The same request always gets the same reply (faults aside, which are counted per attempt)."""
    return True
