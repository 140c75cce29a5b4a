// Vercel's AI SDK against the server, each call as the SDK's docs show it (tests/test_clients.py runs
// this with SERVER_URL set and reads the one JSON line it prints: each case, ok or the error it threw).
// The SDK validates every body and chunk with zod: a field of the wrong type fails the call.
import { createOpenAI } from "@ai-sdk/openai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { generateObject, generateText, streamText, tool } from "ai";
import { z } from "zod";

const baseURL = `${process.env.SERVER_URL}/v1`;
const compatible = createOpenAICompatible({
  name: "sglang-hathora",
  baseURL,
  apiKey: process.env.API_KEY ?? "unused",
  includeUsage: true,
  supportsStructuredOutputs: true,
});
const chat = compatible.chatModel("sglang");
const responses = createOpenAI({ baseURL, apiKey: process.env.API_KEY ?? "unused" }).responses("sglang");
const question = "What is the capital of France?";
const weather = tool({
  description: "The weather in a city.",
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => `Sunny, 21 C in ${city}.`,
});

async function streamed(model) {
  const result = streamText({ model, prompt: question, temperature: 0, maxOutputTokens: 12 });
  let text = "";
  for await (const part of result.fullStream) {
    if (part.type === "error") throw part.error;
    if (part.type === "text-delta") text += part.text;
  }
  return { text, finishReason: await result.finishReason, usage: await result.usage };
}

const cases = {
  generateText: async () => {
    const r = await generateText({ model: chat, prompt: question, temperature: 0, maxOutputTokens: 12 });
    return { text: r.text, finishReason: r.finishReason, usage: r.usage };
  },
  streamText: () => streamed(chat),
  requiredTool: async () => {
    const r = await generateText({
      model: chat,
      prompt: "What is the weather in Paris?",
      tools: { get_weather: weather },
      toolChoice: "required",
      temperature: 0,
      maxOutputTokens: 40,
    });
    return {
      toolCalls: r.toolCalls.map((call) => ({ name: call.toolName, input: call.input })),
      toolResults: r.toolResults.map((result) => result.output),
      finishReason: r.finishReason,
    };
  },
  structuredObject: async () => {
    const r = await generateObject({
      model: chat,
      schema: z.object({ city: z.string(), country: z.string() }),
      prompt: "Name the capital of France and its country.",
      temperature: 0,
      maxOutputTokens: 40,
    });
    return { object: r.object, finishReason: r.finishReason };
  },
  responsesGenerateText: async () => {
    const r = await generateText({ model: responses, prompt: question, temperature: 0, maxOutputTokens: 12 });
    return { text: r.text, finishReason: r.finishReason, usage: r.usage };
  },
  responsesStreamText: () => streamed(responses),
};

const results = {};
for (const [name, run] of Object.entries(cases)) {
  try {
    results[name] = { ok: true, ...(await run()) };
  } catch (error) {
    results[name] = { ok: false, error: String(error), body: String(error?.responseBody ?? ""), cause: String(error?.cause ?? "") };
  }
}
console.log(JSON.stringify(results));
