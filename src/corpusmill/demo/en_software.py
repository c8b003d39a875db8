"""English software documentation: guide pages for invented tools, with prose, option tables and code.

Code samples avoid curly brackets on purpose: C4's rules drop any document containing one, and the demo
wants its documentation pages to count as good text (real documentation sites often lose pages that way).
"""

from __future__ import annotations

import random

from corpusmill.demo.compose import Article, Block, SentencePool, paragraphs

TOOLS = (
    {
        "tool": "Tidepool",
        "pkg": "tidepool",
        "kind": "an embedded time series database",
        "obj": "client",
        "cls": "Client",
        "cmd": "tidepool",
    },
    {
        "tool": "lanternctl",
        "pkg": "lantern",
        "kind": "a command line tool for managing build caches",
        "obj": "cache",
        "cls": "Cache",
        "cmd": "lanternctl",
    },
    {
        "tool": "Quill",
        "pkg": "quill",
        "kind": "a small web framework for server rendered pages",
        "obj": "app",
        "cls": "App",
        "cmd": "quill",
    },
)

HOSTS = {
    "Tidepool": "docs.tidepool-db.io",
    "lanternctl": "docs.lanternctl.dev",
    "Quill": "www.quillframework.org",
}

FEATURES = (
    ("connection pooling", "pool_size", "Configuring connection pooling"),
    ("retries and timeouts", "max_retries", "Retries and timeouts"),
    ("logging", "log_level", "Logging and diagnostics"),
    ("authentication", "auth_token", "Authentication"),
    ("batch writes", "batch_size", "Writing data in batches"),
    ("caching", "cache_dir", "Local caching"),
    ("plugins", "plugin_path", "Extending with plugins"),
    ("configuration files", "config_path", "Configuration files"),
    ("migrations", "schema_version", "Upgrading and migrations"),
    ("compression", "compression", "Compression settings"),
)

INTRO = (
    "The {tool} project is {kind}, and this page explains how to use {feature} in practice.",
    "This guide covers {feature} in {tool}, from the defaults to the settings most teams end up changing.",
    "Most projects never need to touch {feature}, but when they do, the details matter.",
    "Before reading this page, make sure you have installed {tool} and worked through the quick start.",
    "The behaviour described here applies to version {version} and later.",
    "If you are upgrading from an older release, read the section on breaking changes first.",
)

CONCEPT = (
    "By default, {tool} chooses conservative values that work well on a laptop.",
    "The {option} setting controls how {feature} behaves when the {obj} is created.",
    "Changing {option} at runtime has no effect; the value is read once, when the {obj} starts.",
    "Settings can be passed as keyword arguments, read from environment variables or loaded from a file.",
    "When the same setting appears in several places, keyword arguments win over environment variables.",
    "Every {obj} keeps its own state, so two instances in the same process do not interfere with each other.",
    "The library logs a warning when a value looks unreasonable, but it does not refuse to start.",
    "Errors raised by {tool} always include the name of the setting that caused them.",
    "Large values use more memory, while small values increase the number of round trips.",
    "The right choice depends on your workload, so measure before and after any change.",
    "In production, we recommend setting {option} explicitly rather than relying on the default.",
    "All public functions are thread safe unless their documentation says otherwise.",
    "The {obj} closes its resources automatically when used as a context manager.",
    "Internally, {tool} batches small operations together to reduce overhead.",
    "Background work runs on a dedicated thread that stops when the {obj} is closed.",
    "Older releases used a different name for this option, which is still accepted with a "
    "deprecation warning.",
    "Invalid values are rejected when the configuration is loaded, not when they are first used.",
    "You can inspect the effective configuration at any time by calling the describe method.",
    "Tests can replace the real {obj} with an in-memory fake that records every call it receives.",
    "Metrics for {feature} are exported under the same prefix as the rest of the library.",
    "Applications that fork worker processes should create a new {obj} in each child process.",
    "For short scripts the defaults are fine, and you can skip the rest of this section.",
    "Keep in mind that {feature} interacts with the network settings described on the previous page.",
    "Changes to this behaviour are always announced in the changelog one release in advance.",
    "Each release is tested on the three most recent versions of Python and on all major platforms.",
    "You do not need to restart the whole service to pick up new settings; recreating the {obj} is enough.",
    "The reference page lists every accepted value together with the version that introduced it.",
    "Users running on small virtual machines often lower {option} to keep memory usage predictable.",
    "Unknown keys in a configuration file are reported as errors, which catches most typing mistakes early.",
    "It is safe to share one {obj} between many threads, and doing so is usually faster than "
    "creating several.",
)

TROUBLE = (
    "If the {obj} seems to hang, check whether a firewall is silently dropping connections.",
    "A common cause of slow startup is a very large cache directory on a network drive.",
    "Timeout errors under heavy load usually mean the value of {option} is too low for your traffic.",
    "When in doubt, raise the log level to debug and look for repeated warnings.",
    "Memory usage that grows steadily over time often points to objects that are never closed.",
    "Permission errors on Linux are usually fixed by checking the ownership of the data directory.",
    "If a problem only appears in production, compare the environment variables on both machines.",
    "Please include the full traceback and your version number when reporting a bug.",
)

CLI = (
    ("{cmd} init --path ./data", "{cmd} status", "{cmd} config show"),
    ("{cmd} config set {option} 32", "{cmd} restart"),
    ("pip install {pkg}", "{cmd} --version"),
    ("{cmd} doctor", "{cmd} logs --tail 50"),
)

PY = (
    ("from {pkg} import {cls}", "", "{obj} = {cls}({option}=16)", "{obj}.start()"),
    ("import {pkg}", "", "with {pkg}.{cls}({option}=8) as {obj}:", "    {obj}.run()"),
    (
        "from {pkg} import {cls}, load_config",
        "",
        "config = load_config('settings.toml')",
        "{obj} = {cls}.from_config(config)",
    ),
)

HEADINGS = (
    "Overview",
    "How it works",
    "Default behaviour",
    "Tuning for production",
    "Under the hood",
    "Examples",
    "Configuration reference",
    "Frequently asked questions",
    "Known limitations",
)


def _code(lines: tuple[str, ...], slots: dict[str, str]) -> str:
    return "\n".join(line.format(**slots) for line in lines)


def article(rng: random.Random) -> Article:
    """A documentation page for one feature of one invented tool."""
    tool = rng.choice(TOOLS)
    feature, option, title = rng.choice(FEATURES)
    version = f"{rng.randint(1, 4)}.{rng.randint(0, 12)}"
    slots = dict(tool, feature=feature, option=option, version=version)
    pool = SentencePool(rng, {"intro": INTRO, "concept": CONCEPT, "trouble": TROUBLE, "head": HEADINGS})
    blocks: list[Block] = paragraphs(rng, pool.take("intro", rng.randint(2, 3)), slots, (2, 3))
    blocks.append(Block("h2", pool.take("head", 1)[0]))
    blocks += paragraphs(rng, pool.take("concept", rng.randint(5, 8)), slots, (2, 3))
    blocks.append(Block("p", f"The following example shows a typical setup for {feature}."))
    blocks.append(Block("pre", _code(rng.choice(PY), slots)))
    blocks.append(Block("h2", pool.take("head", 1)[0]))
    blocks += paragraphs(rng, pool.take("concept", rng.randint(4, 7)), slots, (2, 3))
    if rng.random() < 0.6:
        blocks.append(Block("p", "The same can be done from the command line."))
        blocks.append(Block("pre", _code(rng.choice(CLI), slots)))
    if rng.random() < 0.7:
        rows = [("Setting", "Default", "Description")]
        rows += [
            (option, str(rng.choice((4, 8, 16, 30))), f"Controls {feature} for each {tool['obj']}."),
            ("log_level", "info", "How much detail is written to the log."),
            ("timeout", f"{rng.randint(5, 60)}s", "How long to wait before giving up on a request."),
        ]
        blocks.append(Block("table", "Related settings", rows=tuple(rows)))
    blocks.append(Block("h2", "Troubleshooting"))
    blocks += paragraphs(rng, pool.take("trouble", rng.randint(3, 5)), slots, (1, 2))
    return Article(
        f"{title} — {tool['tool']} {version} documentation",
        "en",
        "software",
        tuple(blocks),
        description=f"{tool['tool']} documentation: {feature}.",
        home=HOSTS[tool["tool"]],
    )
