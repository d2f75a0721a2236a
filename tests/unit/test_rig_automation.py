"""rig.automation, the runbook interpreter the at-zero tests run terraform/fleet_at_zero.tf's
runbook with: its flow rules on a tiny runbook and a fake client, so a wrong rule shows here
rather than as a runbook that passes for the wrong reason."""

from __future__ import annotations

import pytest

from rig.automation import Runner, transform_input


class Service:
    """A boto3-like client: ``describe_thing`` answers from a script of states."""

    def __init__(self, states: list[str]) -> None:
        self.states, self.calls = states, []

    def describe_thing(self, **params):
        self.calls.append(params)
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {"Things": [{"State": state, "Count": "3"}]}


def runbook(wait_timeout: int = 100) -> dict:
    count = {"Name": "Count", "Selector": "$.Things[0].Count", "Type": "Integer"}
    read = {"action": "aws:executeAwsApi",
            "inputs": {"Service": "svc", "Api": "DescribeThing", "Id": "{{ Id }}"},
            "outputs": [count]}  # fmt: skip
    return {
        "schemaVersion": "0.3",
        "parameters": {"Id": {"type": "String"}, "Kind": {"type": "String", "default": ""}},
        "mainSteps": [
            {"name": "read", **read},
            {"name": "choose", "action": "aws:branch", "isEnd": True, "inputs": {"Choices": [
                {"NextStep": "wait", "Variable": "{{ read.Count }}", "NumericEquals": 3},
                {"NextStep": "last", "Variable": "{{ Kind }}", "StringEquals": "x"}]}},
            {"name": "wait", "action": "aws:waitForAwsResourceProperty",
             "timeoutSeconds": wait_timeout, "onFailure": "step:last", "nextStep": "last",
             "inputs": {"Service": "svc", "Api": "DescribeThing", "Id": "{{ Id }}",
                        "PropertySelector": "$.Things[0].State", "DesiredValues": ["ready"]}},
            {"name": "never", "action": "aws:sleep", "inputs": {}},
            {"name": "last", **read, "isEnd": True},
        ],
    }  # fmt: skip


def test_outputs_are_typed_and_a_wait_ends_when_the_property_has_a_desired_value() -> None:
    service = Service(["starting", "starting", "ready"])
    execution = Runner(runbook(), lambda _s: service, poll=0).run({"Id": ["i-1"]})
    assert execution.status == "Success"
    assert execution.steps == ["read", "choose", "wait", "last"]
    assert execution.outputs["read.Count"] == 3
    assert service.calls[0] == {"Id": "i-1"}  # a one-element list parameter is a String


def test_a_wait_that_times_out_goes_to_its_on_failure_step() -> None:
    service = Service(["starting"])
    execution = Runner(runbook(wait_timeout=1), lambda _s: service, time_scale=0.2, poll=0.05).run(
        {"Id": "i-1"}
    )
    assert execution.steps == ["read", "choose", "wait", "last"]
    assert len(service.calls) > 3  # it polled until the time-out


def test_a_branch_with_no_match_and_no_default_ends_when_it_is_an_end_step() -> None:
    class NotThree(Service):
        def describe_thing(self, **params):
            return {"Things": [{"State": "ready", "Count": "2"}]}

    execution = Runner(runbook(), lambda _s: NotThree([""])).run({"Id": "i-1"})
    assert (execution.status, execution.steps) == ("Success", ["read", "choose"])


def test_an_action_it_does_not_implement_is_refused() -> None:
    document = runbook()
    document["mainSteps"] = [document["mainSteps"][3]]
    with pytest.raises(NotImplementedError, match="aws:sleep"):
        Runner(document, lambda _s: Service(["x"])).run({"Id": "i-1"})


def test_an_input_transformer_fills_its_placeholders_from_the_event() -> None:
    event = {"detail-type": "EC2 Instance Launch Successful", "detail": {"EC2InstanceId": "i-9"}}
    filled = transform_input(
        {"i": "$.detail.EC2InstanceId", "t": "$.detail-type"},
        '{"InstanceId": ["<i>"], "Transition": ["<t>"]}',
        event,
    )
    assert filled == '{"InstanceId": ["i-9"], "Transition": ["EC2 Instance Launch Successful"]}'
