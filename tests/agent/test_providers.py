"""Provider adapters against the fake model server: both API styles, streamed and not, every error."""

from __future__ import annotations

import asyncio
import socket

import pytest

from agent.providers import ProviderConfig, ProviderError, complete, stream_chat
from tests.fakes.model_server import FakeModelServer, Script, echo_count

STYLES = ["openai", "anthropic"]
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there"}]


def cfg(server: FakeModelServer, style: str, **kw) -> ProviderConfig:
    base = server.url if style == "openai" else server.anthropic_url
    defaults = dict(name=f"Fake-{style}", api_style=style, base_url=base, model="m-1", api_key="sk-secret-123")
    defaults.update(backoff_seconds=0.01, timeout=5.0)
    defaults.update(kw)
    return ProviderConfig(**defaults)


async def collect(config: ProviderConfig, messages=MESSAGES) -> list[str]:
    return [chunk async for chunk in stream_chat(config, messages)]


@pytest.mark.parametrize("style", STYLES)
async def test_stream_yields_chunks_in_order(fake_model: FakeModelServer, style: str) -> None:
    fake_model.push(Script(reply="one two three four", chunks=None))
    chunks = await collect(cfg(fake_model, style))
    assert chunks == ["one ", "two ", "three ", "four"]
    (req,) = fake_model.requests
    assert req.body["model"] == "m-1" and req.body["stream"] is True


@pytest.mark.parametrize("style", STYLES)
async def test_complete_returns_whole_reply(fake_model: FakeModelServer, style: str) -> None:
    fake_model.push(Script(reply="the whole answer"))
    assert await complete(cfg(fake_model, style), MESSAGES) == "the whole answer"
    assert not fake_model.requests[0].body.get("stream")


async def test_openai_wire_format(fake_model: FakeModelServer) -> None:
    await collect(cfg(fake_model, "openai"))
    req = fake_model.requests[0]
    assert req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer sk-secret-123"
    assert req.messages == MESSAGES


async def test_anthropic_wire_format(fake_model: FakeModelServer) -> None:
    history = MESSAGES + [
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
    ]
    await collect(cfg(fake_model, "anthropic"), history)
    req = fake_model.requests[0]
    assert req.path == "/v1/messages"
    assert req.headers["x-api-key"] == "sk-secret-123"
    assert req.headers["anthropic-version"]
    assert "authorization" not in req.headers
    # System text moves to its own field; consecutive user turns merge (the API wants alternation).
    assert req.body["system"] == "be brief"
    assert [m["role"] for m in req.messages] == ["user", "assistant", "user"]
    assert req.messages[-1]["content"] == "a\n\nb"
    assert req.body["max_tokens"] > 0


async def test_no_key_sends_no_auth_header(fake_model: FakeModelServer) -> None:
    await collect(cfg(fake_model, "openai", api_key=None))
    assert "authorization" not in fake_model.requests[0].headers


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("streamed", [True, False])
async def test_401_is_an_auth_error_naming_the_provider(fake_model: FakeModelServer, style: str, streamed: bool):
    fake_model.push(Script(status=401, error_message="Incorrect API key provided"))
    config = cfg(fake_model, style)
    with pytest.raises(ProviderError) as caught:
        await (collect(config) if streamed else complete(config, MESSAGES))
    err = caught.value
    assert err.code == "auth" and err.status == 401
    assert f"Fake-{style}" in str(err) and "401" in str(err) and "Incorrect API key provided" in str(err)
    assert "sk-secret-123" not in str(err)
    assert len(fake_model.requests) == 1  # an auth failure is never retried


@pytest.mark.parametrize("style", STYLES)
async def test_429_is_retried_then_succeeds(fake_model: FakeModelServer, style: str) -> None:
    fake_model.push(Script(status=429, retry_after="0"), Script(status=503), Script(reply="finally"))
    assert "".join(await collect(cfg(fake_model, style))) == "finally"
    assert len(fake_model.requests) == 3


async def test_429_gives_up_after_bounded_retries(fake_model: FakeModelServer) -> None:
    fake_model.default = Script(status=429, retry_after="1", error_message="slow down")
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:  # records the backoff instead of waiting it out
        sleeps.append(seconds)

    config = cfg(fake_model, "openai", max_retries=2, backoff_seconds=0.25)
    with pytest.raises(ProviderError) as caught:
        await complete(config, MESSAGES, sleep=fake_sleep)
    assert caught.value.code == "rate_limited" and caught.value.retry_after == 1.0
    assert "429" in str(caught.value) and "retry after 1s" in str(caught.value)
    assert len(fake_model.requests) == 3
    assert sleeps == [1.0, 1.0]  # Retry-After wins over the shorter exponential backoff


async def test_long_retry_after_is_reported_not_waited(fake_model: FakeModelServer) -> None:
    fake_model.default = Script(status=429, retry_after="3600")
    with pytest.raises(ProviderError) as caught:
        await collect(cfg(fake_model, "openai"))
    assert caught.value.retry_after == 3600.0
    assert len(fake_model.requests) == 1


@pytest.mark.parametrize("style", STYLES)
async def test_500_is_a_server_error_not_retried(fake_model: FakeModelServer, style: str) -> None:
    fake_model.default = Script(status=500, error_message="model crashed")
    with pytest.raises(ProviderError) as caught:
        await collect(cfg(fake_model, style))
    assert caught.value.code == "upstream" and caught.value.status == 500
    assert "500" in str(caught.value) and "model crashed" in str(caught.value)
    assert len(fake_model.requests) == 1


@pytest.mark.parametrize("style", STYLES)
async def test_slow_first_byte_times_out_with_clear_error(fake_model: FakeModelServer, style: str) -> None:
    fake_model.push(Script(delay=3.0))
    with pytest.raises(ProviderError) as caught:
        await collect(cfg(fake_model, style, timeout=0.3))
    assert caught.value.code == "timeout"
    assert f"Fake-{style}" in str(caught.value) and "timed out" in str(caught.value)


async def test_stall_between_chunks_times_out(fake_model: FakeModelServer) -> None:
    fake_model.push(Script(reply="a b c", chunk_delay=3.0))
    got: list[str] = []
    with pytest.raises(ProviderError) as caught:
        async for chunk in stream_chat(cfg(fake_model, "openai", timeout=0.3), MESSAGES):
            got.append(chunk)
    assert got == ["a "]
    assert caught.value.code == "timeout" and "next chunk" in str(caught.value)


@pytest.mark.parametrize("style", STYLES)
async def test_dropped_stream_is_an_error_and_not_retried(fake_model: FakeModelServer, style: str) -> None:
    fake_model.push(Script(reply="one two three four", drop_after=2))
    got: list[str] = []
    with pytest.raises(ProviderError) as caught:
        async for chunk in stream_chat(cfg(fake_model, style), MESSAGES):
            got.append(chunk)
    assert got == ["one ", "two "]
    assert caught.value.code == "dropped"
    assert f"Fake-{style}" in str(caught.value) and "before the reply was complete" in str(caught.value)
    assert len(fake_model.requests) == 1  # chunks were delivered: a retry would repeat them


async def test_connect_error_is_retried_then_reported() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = ProviderConfig(
        name="Local",
        api_style="openai",
        base_url=f"http://127.0.0.1:{port}/v1",
        model="m",
        backoff_seconds=0.01,
    )
    attempts = 0

    async def counting_sleep(seconds: float) -> None:
        nonlocal attempts
        attempts += 1

    with pytest.raises(ProviderError) as caught:
        await complete(config, MESSAGES, sleep=counting_sleep)
    assert caught.value.code == "connect" and "cannot connect" in str(caught.value) and "Local" in str(caught.value)
    assert attempts == 2


async def test_unreachable_host_model_server_says_what_to_do() -> None:
    """host.docker.internal refusing is nearly always Ollama listening on the host's 127.0.0.1 only."""
    config = ProviderConfig(
        name="Ollama",
        api_style="openai",
        base_url="http://host.docker.internal:9/v1",  # does not resolve here; refused in a container
        model="m",
        backoff_seconds=0.01,
        max_retries=0,
    )
    with pytest.raises(ProviderError) as caught:
        await complete(config, MESSAGES)
    assert caught.value.code == "connect" and "OLLAMA_HOST=0.0.0.0" in str(caught.value)


async def test_closing_the_stream_early_cancels_upstream(fake_model: FakeModelServer) -> None:
    fake_model.push(Script(reply=" ".join(f"w{i}" for i in range(50)), chunk_delay=0.05))
    stream = stream_chat(cfg(fake_model, "openai"), MESSAGES)
    assert await anext(stream) == "w0 "
    await stream.aclose()
    assert await asyncio.to_thread(fake_model.wait_for, lambda: fake_model.requests[0].disconnected, 10)
    assert not fake_model.requests[0].completed


def test_config_rejects_unknown_style() -> None:
    with pytest.raises(ValueError, match="unknown API style 'grpc'"):
        ProviderConfig(name="x", api_style="grpc", base_url="http://x", model="m")  # type: ignore[arg-type]


async def test_echo_reply_sees_history(fake_model: FakeModelServer) -> None:
    fake_model.default = Script(reply=echo_count)
    text = "".join(await collect(cfg(fake_model, "anthropic")))
    assert text == "messages=1 system=1 last=hi there"


async def test_completer_binds_a_provider_for_the_router(fake_model: FakeModelServer) -> None:
    from agent.providers import completer
    from tests.fakes.model_server import classifier

    fake_model.default = Script(
        reply=classifier(lambda text: ("billing", 0.9) if "invoice" in text else ("other", 0.2))
    )
    ask = completer(cfg(fake_model, "anthropic"))
    assert '"intent": "billing"' in await ask([{"role": "user", "content": "my invoice is wrong"}])
    assert '"intent": "other"' in await ask([{"role": "user", "content": "hello"}])


async def test_anthropic_history_starting_with_assistant_is_trimmed(fake_model: FakeModelServer) -> None:
    await collect(cfg(fake_model, "anthropic"), [{"role": "assistant", "content": "hi"}, *MESSAGES])
    assert [m["role"] for m in fake_model.requests[0].messages] == ["user"]


async def test_rejected_key_echoed_by_provider_is_redacted(fake_model: FakeModelServer) -> None:
    fake_model.push(Script(status=401, error_message="Incorrect API key provided: sk-secret-123."))
    with pytest.raises(ProviderError) as caught:
        await collect(cfg(fake_model, "openai"))
    assert "sk-secret-123" not in str(caught.value) and "provided: ***." in str(caught.value)


async def test_endless_keepalives_time_out(fake_model: FakeModelServer) -> None:
    fake_model.push(Script(delay=5.0, keepalive_every=0.05))
    with pytest.raises(ProviderError) as caught:
        await collect(cfg(fake_model, "openai", timeout=0.4))
    assert caught.value.code == "timeout" and "only keep-alives" in str(caught.value)


async def test_keepalives_then_reply_is_fine(fake_model: FakeModelServer) -> None:
    fake_model.push(Script(reply="late but here", delay=0.3, keepalive_every=0.05))
    assert "".join(await collect(cfg(fake_model, "anthropic", timeout=2))) == "late but here"


async def test_timestamped_chunks_carry_their_send_time(fake_model: FakeModelServer) -> None:
    import time

    fake_model.push(Script(timestamps=True, chunks=5, chunk_delay=0.01))
    before = time.perf_counter()
    stamps = [float(c) for c in await collect(cfg(fake_model, "openai"))]
    assert len(stamps) == 5 and stamps == sorted(stamps)
    assert before < stamps[0] < time.perf_counter()
