// The text side of the Qwen2.5-VL processor: the chat template (rendered by @huggingface/jinja,
// found in any of the files a checkpoint may keep it in), the expansion of image / video pads,
// and batch encoding.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ByteLevelBpeTokenizer } from '../../src/text/bpe.js';
import {
  ChatTemplate, QwenVLTextProcessor, chatTemplateOf, expandVisionPads, loadChatTemplate, padBatch, padIdOf,
} from '../../src/text/chat.js';
import { ChatTemplateError } from '../../src/text/errors.js';
import { memoryFileSystem } from './memory-files.js';

const FIX = fileURLToPath(new URL('../fixtures/vlm', import.meta.url));
const tok = await ByteLevelBpeTokenizer.load(join(FIX, 'bpe_tokenize', 'tokenizer.json'));

describe('chat template and pad expansion', () => {
  const template = new ChatTemplate(readFileSync(join(FIX, 'chat_template', 'chat_template.jinja'), 'utf8'));

  it('renders the Qwen2.5-VL prompt', () => {
    const text = template.render([{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'Hi' }] }], { addGenerationPrompt: true });
    expect(text).toBe('<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n'
      + '<|vision_start|><|image_pad|><|vision_end|>Hi<|im_end|>\n<|im_start|>assistant\n');
    const sys = template.render([{ role: 'system', content: 'S' }, { role: 'user', content: [{ video: 'v.mp4' }, { type: 'image_url', image_url: 'u' }] }],
      { addVisionId: true });
    expect(sys).toBe('<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nVideo 1: <|vision_start|><|video_pad|><|vision_end|>'
      + 'Picture 1: <|vision_start|><|image_pad|><|vision_end|><|im_end|>\n');
  });

  it('finds the template in tokenizer_config.json as well', async () => {
    expect(await loadChatTemplate(join(FIX, 'bpe_tokenize'))).toBe(template.source);
    expect(await loadChatTemplate(join(FIX, 'chat_template'))).toBe(template.source);
    await expect(loadChatTemplate(join(FIX, 'image_preprocess'))).rejects.toThrow(ChatTemplateError);
  });

  it('expands each pad to t*h*w/merge^2 copies, in order over the batch', () => {
    const texts = ['a<|image_pad|>b<|video_pad|>', '<|image_pad|>'];
    const out = expandVisionPads(texts, { imageGridThw: [[1, 4, 6], [1, 2, 2]], videoGridThw: [[2, 4, 4]], mergeSize: 2 });
    expect(out[0]).toBe(`a${'<|image_pad|>'.repeat(6)}b${'<|video_pad|>'.repeat(8)}`);
    expect(out[1]).toBe('<|image_pad|>');
    expect(() => expandVisionPads(texts, { imageGridThw: [[1, 4, 6]], mergeSize: 2 })).toThrow(ChatTemplateError);
    expect(() => expandVisionPads(['x'], { imageGridThw: [[1, 4, 6]], mergeSize: 2 })).toThrow(ChatTemplateError);
  });

  it('encodes a batch through the text processor', () => {
    const cfg = JSON.parse(readFileSync(join(FIX, 'bpe_tokenize', 'tokenizer_config.json'), 'utf8'));
    const pad = padIdOf(tok, cfg);
    expect(pad).toBe(tok.tokenToId('<|endoftext|>'));
    const proc = new QwenVLTextProcessor(tok, template, pad, 2);
    const prompt = proc.applyChatTemplate([{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'Describe.' }] }], { addGenerationPrompt: true });
    const b = proc.encode([prompt, 'hi'], { imageGridThw: [[1, 4, 6]] });
    const imgId = tok.tokenToId('<|image_pad|>')!;
    const row0 = Array.from(b.inputIds.subarray(0, b.length));
    expect(row0.filter((x) => x === imgId)).toHaveLength(6);
    expect(b.lengths[0]).toBe(b.length);
    expect(Array.from(b.attentionMask.subarray(b.length, 2 * b.length)).reduce((s, x) => s + x, 0)).toBe(b.lengths[1]);
    const left = padBatch([[1], [1, 2, 3]], 9, 'left');
    expect(Array.from(left.inputIds)).toEqual([9, 9, 1, 1, 2, 3]);
    expect(Array.from(left.attentionMask)).toEqual([0, 0, 1, 1, 1, 1]);
  });
});

describe('chat template files', () => {
  const jinja = '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}';

  it('prefers chat_template.jinja, then chat_template.json, then tokenizer_config.json', async () => {
    const files = {
      '/a/chat_template.jinja': jinja,
      '/a/chat_template.json': JSON.stringify({ chat_template: 'json' }),
      '/a/tokenizer_config.json': JSON.stringify({ chat_template: 'config' }),
      '/b/chat_template.json': JSON.stringify({ chat_template: 'json' }),
      '/b/tokenizer_config.json': JSON.stringify({ chat_template: 'config' }),
      '/c/tokenizer_config.json': JSON.stringify({ chat_template: [{ name: 'default', template: 'dflt' }, { name: 'tool_use', template: 'tools' }] }),
      '/d/tokenizer_config.json': '[1, 2]',
    };
    const fs = memoryFileSystem(files);
    expect(await loadChatTemplate('/a', 'default', fs)).toBe(jinja);
    expect(await loadChatTemplate('/b', 'default', fs)).toBe('json');
    expect(await loadChatTemplate('/c', 'default', fs)).toBe('dflt');
    expect(await loadChatTemplate('/c', 'tool_use', fs)).toBe('tools');
    await expect(loadChatTemplate('/c', 'other', fs)).rejects.toThrow(ChatTemplateError);
    await expect(loadChatTemplate('/d', 'default', fs)).rejects.toThrow(/tokenizer_config.json is not a JSON object/);
    expect(new ChatTemplate(await loadChatTemplate('/a', 'default', fs)).render([{ role: 'user', content: 'hi' }])).toBe('user: hi\n');
  });

  it('takes the template from a config already parsed', () => {
    expect(chatTemplateOf({ chat_template: 'x' })).toBe('x');
    expect(chatTemplateOf({ chat_template: [{ name: 'rag', template: 'r' }] }, 'rag')).toBe('r');
    expect(chatTemplateOf({ bos_token: '<s>' })).toBeUndefined();
  });

  it('names a template that does not parse or fails to render', () => {
    expect(() => new ChatTemplate('{% for %}')).toThrow(ChatTemplateError);
    expect(() => new ChatTemplate('{{ raise_exception("no") }}').render([])).toThrow(ChatTemplateError);
  });
});
