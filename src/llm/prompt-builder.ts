import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ContextMessage, DialogueContext, Profile } from './engine.js';
import { MOODS, TENDENCIES, TONES } from './engine.js';
import type { ChatMessage } from './openrouter/client.js';

export interface PromptBuilderOptions {
  /** Folder holding the prompt files; defaults to the first of DEFAULT_PROMPT_DIRS that has them. */
  promptsDir?: string;
}

export interface BuiltPrompt {
  messages: ChatMessage[];
  /** OpenAI-style `response_format` asking for the JSON shape the parsers expect. */
  responseFormat: unknown;
}

/** The schema name the prediction request carries (the fake server tells the two requests apart by it). */
export const PREDICTION_SCHEMA_NAME = 'opinion_prediction';
export const SUGGESTIONS_SCHEMA_NAME = 'reply_suggestions';

const PROMPT_FILES = [
  'suggestions.system',
  'suggestions.task',
  'prediction.system',
  'prediction.task',
  'context',
  'empty',
] as const;
type PromptName = (typeof PROMPT_FILES)[number];

/**
 * Where the prompts live. tsc does not copy .md files into dist/, so the compiled module
 * (dist/src/llm/prompt-builder.js) reads them from the source tree (src/llm/prompts) instead of a copy
 * that could drift; under tsx the module sits next to them.
 */
export function defaultPromptDirs(moduleUrl: string): string[] {
  return [
    fileURLToPath(new URL('./prompts/', moduleUrl)),
    fileURLToPath(new URL('../../../src/llm/prompts/', moduleUrl)),
  ];
}

export const DEFAULT_PROMPT_DIRS: readonly string[] = defaultPromptDirs(import.meta.url);

/** A template split once at load time into literal text and `{{placeholder}}` names. */
class Template {
  readonly #parts: string[];
  readonly #names: string[];

  constructor(file: string, text: string, allowed: readonly string[]) {
    const pieces = text.split(/\{\{(\w+)\}\}/);
    this.#parts = [];
    this.#names = [];
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i] ?? '';
      if (i % 2 === 0) {
        this.#parts.push(piece);
      } else {
        if (!allowed.includes(piece)) throw new Error(`${file}: unknown placeholder {{${piece}}}`);
        this.#names.push(piece);
      }
    }
  }

  render(values: Readonly<Record<string, string>>): string {
    let out = this.#parts[0] ?? '';
    for (let i = 0; i < this.#names.length; i++) {
      out += (values[this.#names[i] ?? ''] ?? '') + (this.#parts[i + 1] ?? '');
    }
    return out;
  }
}

const CONTEXT_FIELDS = [
  'scenario', 'user_profile', 'target_profile', 'history', 'session', 'focused', 'user_intent', 'modifications',
] as const;

const PROFILE_LISTS = ['relations', 'personalities', 'preferences', 'taboos', 'common_topics'] as const;

/**
 * Characters of conversation (history and session messages) one prompt carries, and of modifications.
 * A conversation may be far longer (a conversation_start alone may carry 16 MiB): past the budget the
 * newest lines are kept, the session's before the history's. Sending it all would pass every model's
 * context (the request fails) and cost the event loop ~240 ms per request for 16 million characters,
 * which one client could ask for 50 times a second.
 */
export const PROMPT_DIALOGUE_MAX_CHARS = 60_000;
export const PROMPT_MODIFICATIONS_MAX_CHARS = 8_000;

/** The newest lines that fit `budget` characters (oldest first), and how many older ones were left out. */
function newestLines<T>(items: readonly T[], render: (item: T, index: number) => string, budget: number): { lines: string[]; omitted: number; used: number } {
  const lines: string[] = [];
  let used = 0;
  let i = items.length - 1;
  for (; i >= 0; i--) {
    const line = render(items[i]!, i);
    if (used + line.length + 1 > budget) break;
    lines.push(line);
    used += line.length + 1;
  }
  return { lines: lines.reverse(), omitted: i + 1, used };
}

function renderLines(lines: readonly string[], omitted: number, empty: string): string {
  if (lines.length === 0 && omitted === 0) return empty;
  const note = omitted > 0 ? [`（更早的 ${omitted} 条略去）`] : [];
  return [...note, ...lines].join('\n');
}

const messageLine = (m: ContextMessage): string => `${m.sender}: ${m.content}`;

/** Renders a profile as `key: value` lines with the protocol's field names; empty fields are left out. */
function renderProfile(profile: Profile | null, empty: string): string {
  if (profile === null) return empty;
  const lines: string[] = [];
  if (profile.name !== null) lines.push(`name: ${profile.name}`);
  if (profile.age !== null) lines.push(`age: ${profile.age}`);
  if (profile.gender !== null) lines.push(`gender: ${profile.gender}`);
  for (const key of PROFILE_LISTS) {
    const values = profile[key];
    if (values.length > 0) lines.push(`${key}: ${values.join(', ')}`);
  }
  return lines.length === 0 ? empty : lines.join('\n');
}

function orEmpty(text: string | null, empty: string): string {
  return text === null || text.trim() === '' ? empty : text;
}

/**
 * Builds chat messages from a DialogueContext with our prompt files (src/llm/prompts/*.md), read once at
 * construction so a missing or broken file fails start-up rather than the first request.
 */
export class PromptBuilder {
  readonly #templates: Record<PromptName, Template>;
  readonly #empty: string;

  constructor(options: PromptBuilderOptions = {}) {
    const dir = options.promptsDir ?? DEFAULT_PROMPT_DIRS.find((d) => existsSync(join(d, 'context.md')));
    if (dir === undefined) {
      throw new Error(`prompt files not found in ${DEFAULT_PROMPT_DIRS.join(' or ')}`);
    }
    const allowed = [...CONTEXT_FIELDS, 'count', 'selected'];
    const templates: Partial<Record<PromptName, Template>> = {};
    for (const name of PROMPT_FILES) {
      const file = join(dir, `${name}.md`);
      templates[name] = new Template(file, readFileSync(file, 'utf8').trim(), allowed);
    }
    this.#templates = templates as Record<PromptName, Template>;
    this.#empty = this.#templates.empty.render({});
  }

  suggestions(context: DialogueContext, count: number): BuiltPrompt {
    const values = { count: String(count) };
    return {
      messages: [
        { role: 'system', content: this.#templates['suggestions.system'].render(values) },
        {
          role: 'user',
          content: `${this.#context(context)}\n\n${this.#templates['suggestions.task'].render(values)}`,
        },
      ],
      responseFormat: {
        type: 'json_schema',
        json_schema: {
          name: SUGGESTIONS_SCHEMA_NAME,
          strict: true,
          schema: {
            type: 'object',
            properties: {
              suggestions: { type: 'array', items: { type: 'string' }, minItems: count, maxItems: count },
            },
            required: ['suggestions'],
            additionalProperties: false,
          },
        },
      },
    };
  }

  prediction(context: DialogueContext, selectedContent: string): BuiltPrompt {
    return {
      messages: [
        { role: 'system', content: this.#templates['prediction.system'].render({}) },
        {
          role: 'user',
          content: `${this.#context(context)}\n\n${this.#templates['prediction.task'].render({ selected: selectedContent })}`,
        },
      ],
      responseFormat: {
        type: 'json_schema',
        json_schema: {
          name: PREDICTION_SCHEMA_NAME,
          strict: true,
          schema: {
            type: 'object',
            properties: {
              prediction: {
                type: 'object',
                properties: {
                  tendency: { type: 'string', enum: TENDENCIES },
                  mood: { type: 'string', enum: MOODS },
                  tone: { type: 'string', enum: TONES },
                },
                required: ['tendency', 'mood', 'tone'],
                additionalProperties: false,
              },
            },
            required: ['prediction'],
            additionalProperties: false,
          },
        },
      },
    };
  }

  #context(context: DialogueContext): string {
    const empty = this.#empty;
    // The session is the conversation now: it gets the budget first, the history what is left.
    const session = newestLines(context.sessionMessages, messageLine, PROMPT_DIALOGUE_MAX_CHARS);
    const history = newestLines(context.historyMessages, messageLine, PROMPT_DIALOGUE_MAX_CHARS - session.used);
    // Focused messages repeat messages above (up to 1,000 of them): a budget of their own.
    const focused = newestLines(context.focusedMessages, messageLine, PROMPT_DIALOGUE_MAX_CHARS);
    const modifications = newestLines(context.modifications, (m, i) => `${i + 1}. ${m}`, PROMPT_MODIFICATIONS_MAX_CHARS);
    return this.#templates.context.render({
      scenario: orEmpty(context.scenarioDescription, empty),
      user_profile: renderProfile(context.userProfile, empty),
      target_profile: renderProfile(context.targetProfile, empty),
      history: renderLines(history.lines, history.omitted, empty),
      session: renderLines(session.lines, session.omitted, empty),
      focused: renderLines(focused.lines, focused.omitted, empty),
      user_intent: orEmpty(context.userIntent, empty),
      modifications: renderLines(modifications.lines, modifications.omitted, empty),
    });
  }
}
