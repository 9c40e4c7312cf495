// stream-server with the official openai client: models, completions and chat,
// whole and streamed, errors as the client's exception classes.
// env: SI_PORT, SI_KEY, SI_MODEL_NAME. Run by ../test_node.py.
import OpenAI from 'openai';
import assert from 'node:assert/strict';

const baseURL = `http://127.0.0.1:${process.env.SI_PORT}/v1`;
const client = new OpenAI({ baseURL, apiKey: process.env.SI_KEY, maxRetries: 0, timeout: 60000 });

const models = await client.models.list();
assert.deepEqual(models.data.map((m) => m.id), [process.env.SI_MODEL_NAME]);

const comp = await client.completions.create({ model: 'm', prompt: 'Once upon a time', max_tokens: 12, temperature: 0 });
assert.equal(comp.object, 'text_completion');
assert.equal(typeof comp.choices[0].text, 'string');
assert.ok(['stop', 'length'].includes(comp.choices[0].finish_reason));
assert.equal(comp.usage.total_tokens, comp.usage.prompt_tokens + comp.usage.completion_tokens);

let text = '';
let finish = null;
for await (const chunk of await client.completions.create({ model: 'm', prompt: 'Once upon a time', max_tokens: 12,
                                                            temperature: 0, stream: true })) {
  text += chunk.choices[0]?.text ?? '';
  finish = chunk.choices[0]?.finish_reason ?? finish;
}
assert.equal(text, comp.choices[0].text);
assert.equal(finish, comp.choices[0].finish_reason);

const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello!' }];
const chat = await client.chat.completions.create({ model: 'm', messages, max_tokens: 16, temperature: 0 });
assert.equal(chat.object, 'chat.completion');
assert.equal(chat.choices[0].message.role, 'assistant');
assert.equal(typeof chat.choices[0].message.content, 'string');

let content = '';
let usage = null;
const stream = await client.chat.completions.create({ model: 'm', messages, max_tokens: 16, temperature: 0,
                                                      stream: true, stream_options: { include_usage: true } });
for await (const chunk of stream) {
  content += chunk.choices[0]?.delta?.content ?? '';
  if (chunk.usage) usage = chunk.usage;
}
assert.equal(content, chat.choices[0].message.content);
assert.deepEqual(usage, chat.usage);

await assert.rejects(client.completions.create({ model: 'm', prompt: 'x', n: 2 }),
                     (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && /n = 1/.test(e.message));
const wrong = new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 });
await assert.rejects(wrong.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);

console.log(`ok: completion ${JSON.stringify(comp.choices[0].text)}, chat ${JSON.stringify(content)}`);
