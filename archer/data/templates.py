"""Prompt templates: how a `Sample` becomes prompt token ids.

- `PlainTemplate`: a format string, no chat markup (the tiny default; base models).
- `ChatTemplate`: the tokenizer's chat template when it has one, else `fallback`; with the
  R1-style instruction to put the final answer in \\boxed{} for math, and optional worked
  examples shown as earlier turns of the conversation (few-shot prompting).

A sample that carries chat messages (`Sample.messages`, verl's rows) is sent through the
chat template as it is, with `add_generation_prompt=True`: its messages already hold any
system prompt and instruction, so `instruction` and `system` are not added. Without a chat
template (the tiny default's tokenizer, base models) there is no markup to honour, so the
messages' contents, joined by blank lines, fill `{problem}` of the plain format: a base model
then sees the same frame as for archer's rows, and the tiny default trains on any file.
"""

from __future__ import annotations

from archer.types import Sample

R1_MATH_INSTRUCTION = "Let's think step by step and output the final answer within \\boxed{}."


def plain_content(sample: Sample) -> str:
    """The prompt without chat markup: the messages' contents joined by blank lines, else `problem`."""
    if sample.messages is None:
        return sample.problem
    return "\n\n".join(m["content"] for m in sample.messages if m.get("content"))


class PlainTemplate:
    """`format` with `{problem}` filled in, encoded without special tokens.

    Args:
        format: e.g. "{problem}=" or "Question: {problem}\\nAnswer:".
        add_bos: prepend the tokenizer's BOS token when it has one.
    """

    def __init__(self, format: str = "{problem}\n", add_bos: bool = True):
        if "{problem}" not in format:
            raise ValueError(f"data.template.format must contain '{{problem}}', got {format!r}")
        self.format, self.add_bos = format, add_bos

    def text(self, sample: Sample, tokenizer) -> str:
        return self.format.format(problem=plain_content(sample))

    def encode(self, sample: Sample, tokenizer) -> list[int]:
        ids = tokenizer.encode(self.text(sample, tokenizer), add_special_tokens=False)
        if self.add_bos and tokenizer.bos_token_id is not None:
            ids = [tokenizer.bos_token_id, *ids]
        return ids


def _worked_examples(examples) -> list[tuple[str, str]]:
    """`data.template.examples` as (problem, response) pairs, refused by index when malformed."""
    pairs = []
    for i, example in enumerate(examples or []):
        problem = example.get("problem") if hasattr(example, "get") else None
        response = example.get("response") if hasattr(example, "get") else None
        if not (isinstance(problem, str) and problem.strip() and isinstance(response, str) and response.strip()):
            raise ValueError(f"data.template.examples[{i}] must be {{problem: <text>, response: <text>}}, "
                             f"both non-empty strings; got {example!r}")
        pairs.append((problem, response))
    return pairs


class ChatTemplate(PlainTemplate):
    """The tokenizer's chat template: problem + instruction as the user's turn.

    Args:
        instruction: appended to the problem ("" for none).
        system: optional system message.
        fallback: format used when the tokenizer has no chat template.
        examples: worked examples, `[{problem, response}, ...]`, shown before the problem as
            earlier user/assistant turns (each user turn with the same instruction), so that a
            small model sees the expected answer format. Take them from the training split,
            never from the held-out one. Not added to rows that carry their own `messages`.
    """

    def __init__(self, instruction: str = R1_MATH_INSTRUCTION, system: str | None = None,
                 fallback: str = "Question: {problem}\nAnswer: ", examples=None):
        super().__init__(fallback, add_bos=True)
        self.instruction, self.system = instruction, system
        self.examples = _worked_examples(examples)

    def _ask(self, problem: str) -> str:
        return f"{problem} {self.instruction}".strip()

    def text(self, sample: Sample, tokenizer) -> str:
        if sample.messages is not None:
            if not getattr(tokenizer, "chat_template", None):
                return self.format.format(problem=plain_content(sample))
            return tokenizer.apply_chat_template(sample.messages, tokenize=False, add_generation_prompt=True)
        if not getattr(tokenizer, "chat_template", None):
            shots = "".join(self.format.format(problem=self._ask(p)) + f"{r}\n\n" for p, r in self.examples)
            return shots + self.format.format(problem=self._ask(sample.problem))
        messages = [{"role": "system", "content": self.system}] if self.system else []
        for problem, response in self.examples:
            messages += [{"role": "user", "content": self._ask(problem)}, {"role": "assistant", "content": response}]
        messages.append({"role": "user", "content": self._ask(sample.problem)})
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def encode(self, sample: Sample, tokenizer) -> list[int]:
        if not getattr(tokenizer, "chat_template", None):
            return super().encode(sample, tokenizer)
        # The chat template already holds any BOS it needs.
        return tokenizer.encode(self.text(sample, tokenizer), add_special_tokens=False)
