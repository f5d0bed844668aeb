/**
 * Stands in for your LLM, so the examples run offline: a model (the AI SDK's v4 model interface,
 * taken by `ai` 7 and Mastra) that first asks to call `toolName`, then answers with the text of the
 * tool's result, or `error: …` if the call failed.
 */
import { MockLanguageModelV4 } from 'ai/test';
import { firstText } from './env.ts';

const usage = { inputTokens: { total: 0, noCache: 0, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 0, text: 0, reasoning: 0 } };

export function scriptedModel(toolName: string): MockLanguageModelV4 {
  return new MockLanguageModelV4({
    doGenerate: async ({ prompt }) => {
      // The tool's result, once the agent has called it and sent it back.
      const result = prompt.flatMap((m) => (m.role === 'tool' ? m.content : [])).find((p) => p.type === 'tool-result');
      if (!result) {
        return { content: [{ type: 'tool-call', toolCallId: 'call-1', toolName, input: '{}' }], finishReason: { unified: 'tool-calls', raw: undefined }, usage, warnings: [] };
      }
      const { output } = result;
      // An MCP tool's result: its content blocks (the AI SDK) or the CallToolResult as JSON (Mastra).
      const text =
        output.type === 'content' ? output.value.find((p) => p.type === 'text')?.text
        : output.type === 'json' ? firstText(output.value)
        : output.type === 'error-text' ? `error: ${output.value}`
        : JSON.stringify(output);
      return { content: [{ type: 'text', text: text ?? '' }], finishReason: { unified: 'stop', raw: undefined }, usage, warnings: [] };
    },
  });
}
