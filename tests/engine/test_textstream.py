from hearth.engine.textstream import OutputText, StopMatcher, Utf8Stream


def feed(matcher: StopMatcher, pieces: list[str]) -> tuple[str, bool]:
    out = ""
    for piece in pieces:
        text, stopped = matcher.push(piece)
        out += text
        if stopped:
            return out, True
    return out + matcher.flush(), False


def test_stop_split_across_tokens_is_never_emitted() -> None:
    assert feed(StopMatcher(["END"]), ["one E", "N", "D two"]) == ("one ", True)


def test_earliest_of_several_stops_wins() -> None:
    assert feed(StopMatcher(["b", "xyz"]), ["axy", "zb"]) == ("a", True)


def test_held_prefix_is_released_when_it_does_not_complete() -> None:
    assert feed(StopMatcher(["END"]), ["E", "N", "x"]) == ("ENx", False)
    assert feed(StopMatcher(["END"]), ["tail E"]) == ("tail E", False)


def test_no_stops_passes_through() -> None:
    assert feed(StopMatcher([]), ["a", "b"]) == ("ab", False)


def test_utf8_split_across_pieces() -> None:
    data = "héllo ✓".encode()
    stream = Utf8Stream()
    out = "".join(stream.push(data[i : i + 1]) for i in range(len(data)))
    assert out + stream.flush() == "héllo ✓"


def test_output_text_flush_on_length() -> None:
    out = OutputText(["STOP"])
    text, stopped = out.push(b"abc ST")
    assert (text, stopped) == ("abc ", False)
    assert out.flush() == "ST"
