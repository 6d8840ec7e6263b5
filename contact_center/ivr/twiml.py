"""TwiML documents for the call path."""

from __future__ import annotations

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse


def enqueue_response(
    queue_name: str,
    wait_url: str,
    action_url: str,
    greeting: str | None,
    response: VoiceResponse | None = None,
) -> str:
    """Greet the caller and hold them in a Twilio queue until an agent accepts.

    `response` may already hold what the IVR said before.
    """
    response = response if response is not None else VoiceResponse()
    if greeting:
        response.say(greeting)
    response.enqueue(
        queue_name, wait_url=wait_url, wait_url_method="POST", action=action_url, method="POST"
    )
    return str(response)


def spoken_wait(seconds: int) -> str:
    """An estimated wait as a person would say it."""
    if seconds < 60:
        return "less than a minute"
    minutes = round(seconds / 60)
    return "about 1 minute" if minutes == 1 else f"about {minutes} minutes"


HOLD_MUSIC = "http://com.twilio.sounds.music.s3.amazonaws.com/MARKOVICHAMP-Borghestral.mp3"
WAIT_OPTIONS = "To be called back without losing your place, press 1. To leave a message, press 2."


def wait_response(
    position: int | None, estimated_wait_s: int | None = None, options_url: str | None = None
) -> str:
    """What a waiting caller hears each round: place and wait, options, then hold music."""
    response = VoiceResponse()
    if position:
        text = f"You are number {position} in the queue."
        if estimated_wait_s is not None and estimated_wait_s >= 0:
            text += f" Your estimated wait is {spoken_wait(estimated_wait_s)}."
        response.say(text + " Thank you for waiting.")
    else:
        response.say("Thank you for waiting. An agent will be with you shortly.")
    if options_url:
        gather = Gather(num_digits=1, timeout=3, action=options_url, method="POST")
        gather.say(WAIT_OPTIONS)
        response.append(gather)
    response.play(HOLD_MUSIC)
    return str(response)


def leave_queue_response() -> str:
    """Take the caller out of <Enqueue>; the enqueue action URL then says what happens."""
    response = VoiceResponse()
    response.leave()
    return str(response)


def transcription(callback_url: str | None) -> dict[str, object]:
    """<Record> attributes asking Twilio to transcribe and post the text to `callback_url`."""
    if callback_url is None:
        return {}
    return {"transcribe": True, "transcribe_callback": callback_url}


def voicemail_response(
    action_url: str,
    recording_callback: str,
    prompt: str,
    transcribe_callback: str | None = None,
) -> str:
    """Record a message."""
    response = VoiceResponse()
    response.say(prompt)
    response.record(
        max_length=120,
        play_beep=True,
        action=action_url,
        method="POST",
        recording_status_callback=recording_callback,
        recording_status_callback_method="POST",
        **transcription(transcribe_callback),
    )
    return str(response)


def conference_response(
    conference: str,
    *,
    ends_on_exit: bool,
    whisper: str | None = None,
    consent: str | None = None,
    recording_callback: str | None = None,
    after_url: str | None = None,
) -> str:
    """Put a call leg into the interaction's conference (after a whisper only it hears).

    With `recording_callback` the conference is recorded from the start; `consent` is the
    notice the caller hears before that. With `after_url` the leg goes on there when the
    conference ends (a post-call survey) instead of hanging up.
    """
    response = VoiceResponse()
    for text in (whisper, consent):
        if text:
            response.say(text)
    recording = (
        {
            "record": "record-from-start",
            "recording_status_callback": recording_callback,
            "recording_status_callback_method": "POST",
            "recording_status_callback_event": "in-progress completed",
        }
        if recording_callback
        else {}
    )
    dial = Dial(**({"action": after_url, "method": "POST"} if after_url else {}))
    dial.conference(
        conference,
        start_conference_on_enter=True,
        end_conference_on_exit=ends_on_exit,
        beep=False,
        **recording,
    )
    response.append(dial)
    return str(response)


def fallback_response(
    action_url: str, recording_callback: str, transcribe_callback: str | None = None
) -> str:
    """The apology when our service cannot take the call: leave a message instead."""
    return voicemail_response(
        action_url,
        recording_callback,
        "We are sorry, we cannot take your call right now. Please leave your name, number "
        "and message after the tone, and we will call you back.",
        transcribe_callback,
    )


def say_and_hang_up(message: str) -> str:
    """A short message, then the call ends."""
    response = VoiceResponse()
    response.say(message)
    response.hangup()
    return str(response)


def empty_response() -> str:
    return str(VoiceResponse())


def survey_question(action_url: str, preface: str | None = None) -> str:
    """Ask the caller to rate the call on the keypad."""
    response = VoiceResponse()
    if preface:
        response.say(preface)
    gather = Gather(num_digits=1, timeout=6, action=action_url, method="POST")
    gather.say(
        "Before you go: how satisfied were you with this call? Press 1 for not at all, up to "
        "5 for very satisfied."
    )
    response.append(gather)
    response.say("Thank you for calling. Goodbye.")
    response.hangup()
    return str(response)
