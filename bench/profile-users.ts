// Profiles the warm path with 100,000 users (after filling), for `npm run bench` work: node --import tsx bench/profile-users.ts
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import { filledEngine } from './user-scaling.js';

const users = Array.from({ length: 100_000 }, (_, i) => `user-${i}@example.com`);
const current = { user: users[0]! };
const answer = new Response('ok');
const next = (() => Promise.resolve(answer)) as unknown as typeof fetch;
const send = await filledEngine(users, 1, 1, next, current);
const picks = Array.from({ length: 400_000 }, () => users[Math.floor(Math.random() * users.length)]!);
const session = new Session();
session.connect();
await session.post('Profiler.enable');
await session.post('Profiler.setSamplingInterval', { interval: 50 });
await session.post('Profiler.start');
const started = performance.now();
for (const user of picks) {
  current.user = user;
  await send('https://mcp.bench.example/mcp', { method: 'POST', body: '{}' });
}
console.log('µs per call', ((performance.now() - started) * 1000) / picks.length);
const { profile } = await session.post('Profiler.stop');
writeFileSync('/tmp/users.cpuprofile', JSON.stringify(profile));
