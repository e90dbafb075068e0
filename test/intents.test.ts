import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AllIntents, AllNonPrivilegedIntents, Intents, PrivilegedIntents, intentNames, intentsForEvents } from '../src/intents.js';

test('intent values match the documented table', () => {
  assert.equal(AllIntents, 53608447);
  assert.equal(AllNonPrivilegedIntents, 53575421);
  assert.equal(PrivilegedIntents, 2 | 256 | 32768);
  assert.equal(Object.keys(Intents).length, 21);
});

test('intentsForEvents covers guild and DM forms, never MessageContent', () => {
  assert.equal(intentsForEvents(['MESSAGE_CREATE']), Intents.GuildMessages | Intents.DirectMessages);
  assert.equal(intentsForEvents(['PRESENCE_UPDATE', 'GUILD_CREATE']), Intents.GuildPresences | Intents.Guilds);
  assert.equal(intentsForEvents(['INTERACTION_CREATE', 'READY', 'SOMETHING_NEW']), 0);
  assert.equal(intentsForEvents(['TYPING_START']), Intents.GuildMessageTyping | Intents.DirectMessageTyping);
  assert.equal(intentsForEvents(['MESSAGE_CREATE', 'MESSAGE_UPDATE']) & Intents.MessageContent, 0);
});

test('intentNames lists set bits, including undocumented ones', () => {
  assert.deepEqual(intentNames(Intents.Guilds | Intents.GuildMessages), ['Guilds', 'GuildMessages']);
  assert.deepEqual(intentNames(1 << 17), ['bit 17']);
});
