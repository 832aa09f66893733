/**
 * Testing your agents offline: a fake LLM vendor (a real local HTTP server speaking the OpenAI chat
 * completions and responses APIs and the Anthropic messages API, with streaming) and a scripted
 * in-process model, and a reader of OTLP trace exports (protobuf or JSON) for a receiver of your own.
 *
 * @example
 *   import { startFakeLlmServer } from 'swarm-runtime/testing';
 *   const fake = await startFakeLlmServer({ script: [{ content: 'Hello!' }] });
 *   // point the agent at it: OPENAI_BASE_URL=fake.openaiBaseUrl, or runtime.base_url in agent.yaml
 */
export { startFakeLlmServer } from './fake-llm-server.js';
export type { FakeApi, FakeLlmServer, FakeLlmServerOptions, FakeReply, FakeScript, FakeToolCall, RecordedRequest } from './fake-llm-server.js';
export { ScriptedModel } from './scripted-model.js';
export type { ModelScript, ScriptedModelOptions, ScriptedReply } from './scripted-model.js';
export { memoryJournal } from '../agents/loop.js';
export { decodeOtlpTraces } from './otlp-traces.js';
export type { OtlpAttr, OtlpSpan, OtlpTraces, OtlpValue } from './otlp-traces.js';
