#!/usr/bin/env node
// WildDuck's side of the BullMQ queue, with the real bullmq package, for hookrouter's tests and
// benchmark.
//
//   node wildduck-queue.js <5-23|latest> <redis url> <bullmq prefix> add [job opts JSON] < events.jsonl
//   node wildduck-queue.js <5-23|latest> <redis url> <bullmq prefix> counts
//   node wildduck-queue.js <5-23|latest> <redis url> <bullmq prefix> pause|resume
//   node wildduck-queue.js <5-23|latest> <redis url> <bullmq prefix> die-working
//   node wildduck-queue.js <5-23|latest> <redis url> <bullmq prefix> produce [{"wait": n, "waitMs": ms}] < events.jsonl
//
// <redis url> is redis://host:port/db, or sentinel://<master name>@host:port,host:port,... for a
// Redis behind Sentinel, which ioredis follows through a failover as WildDuck's dbs.redis does.
//
// `add` publishes each line of stdin (one event per line) exactly as WildDuck 1.45's
// lib/events.js does, and prints {"added": n}. Optional job options are merged over WildDuck's
// (to make delayed or prioritized jobs). `counts` prints Queue.getJobCounts() plus what it does
// not show: the stalled set and any job keys left under the queue. `die-working` runs a
// WildDuck worker (a BullMQ Worker, 1 s lock and stalled-check interval) in a child process that dies by SIGKILL while
// working on a job, leaving it in `active`, and prints what is active afterwards. `produce` is a
// steady producer for failover tests: it adds each line of stdin as it arrives, one at a time,
// and prints one line per event as its add settles: {"n": <the event's n>, "id": <job id>,
// "replicas": k} or {"n": ..., "error": "..."}. With "wait", each resolved add is followed by
// WAIT <wait> <waitMs> on the queue's connection, and "replicas" is WAIT's answer — 0 when
// ioredis reconnected between the add and the WAIT's answer (a WAIT on a new connection says
// nothing about a write made on the old one).
'use strict';

const readline = require('readline');
const { fork } = require('child_process');

const [version, url, prefix, command, extra] = process.argv.slice(2);
const { Queue, Worker } = require(version === '5-23' ? 'bullmq-5-23' : 'bullmq-latest');
const QUEUE = 'webhooks';
// The queue's own keys (BullMQ's QueueKeys); anything else under the queue is a job's.
const QUEUE_KEYS = new Set(['', 'active', 'wait', 'waiting-children', 'paused', 'id', 'delayed', 'prioritized',
  'stalled-check', 'completed', 'failed', 'stalled', 'repeat', 'limiter', 'meta', 'events', 'pc', 'marker', 'de']);

function connection() {
  if (url.startsWith('sentinel://')) {
    const [name, hosts] = url.slice('sentinel://'.length).split('@');
    const sentinels = hosts.split(',').map(address => {
      const [host, port] = address.split(':');
      return { host, port: Number(port) };
    });
    return { sentinels, name, maxRetriesPerRequest: null };
  }
  const parsed = new URL(url);
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 6379),
    db: Number(parsed.pathname.slice(1) || 0),
    maxRetriesPerRequest: null,
  };
}

// WildDuck's lib/events.js publish(), with the queue made once (WildDuck keeps one too).
function publisher(queue, overrides) {
  return data =>
    queue.add('wehook', Object.assign({ time: Date.now() }, data), Object.assign({
      removeOnComplete: true,
      removeOnFail: 500,
      attempts: 5,
      backoff: { type: 'exponential', delay: 2000 },
    }, overrides));
}

async function add(queue) {
  const publish = publisher(queue, extra ? JSON.parse(extra) : {});
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  let pending = [];
  let added = 0;
  for await (const line of lines) {
    if (!line.trim()) continue;
    pending.push(publish(JSON.parse(line)));
    // WildDuck publishes from many concurrent API requests; keep up to 200 adds in flight.
    if (pending.length >= 200) {
      added += (await Promise.all(pending)).length;
      pending = [];
    }
  }
  added += (await Promise.all(pending)).length;
  return { added };
}

async function produce(queue) {
  const options = extra ? JSON.parse(extra) : {};
  const publish = publisher(queue, {});
  // ioredis reports each lost connection and unreachable sentinel: expected here, and counted
  // through the results instead.
  queue.on('error', () => {});
  const client = await queue.client;
  client.on('error', () => {});
  let connections = 0;
  client.on('ready', () => connections++);
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  let produced = 0;
  for await (const line of lines) {
    if (!line.trim()) continue;
    const event = JSON.parse(line);
    const before = connections;
    let result;
    try {
      const job = await publish(event);
      let replicas = null;
      if (options.wait) {
        replicas = await client.wait(options.wait, options.waitMs || 1000);
        if (connections !== before) replicas = 0;
      }
      result = { n: event.n, id: job.id, replicas };
    } catch (error) {
      result = { n: event.n, error: String(error && error.message || error) };
    }
    process.stdout.write(JSON.stringify(result) + '\n');
    produced++;
  }
  return { produced };
}

async function counts(queue) {
  const result = await queue.getJobCounts();
  const client = await queue.client;
  const base = `${prefix}:${QUEUE}:`;
  result.stalled = await client.scard(`${base}stalled`);
  const leftovers = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${base}*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      if (!QUEUE_KEYS.has(key.slice(base.length))) leftovers.push(key.slice(base.length));
    }
  } while (cursor !== '0');
  result.jobKeys = leftovers.sort();
  result.paused = result.paused || 0;
  result.isPaused = await queue.isPaused();
  return result;
}

// The child of die-working: take a job, then die without a word.
function workAndDie() {
  new Worker(QUEUE, async () => {
    process.kill(process.pid, 'SIGKILL');
    await new Promise(() => {});
  }, { connection: connection(), prefix, lockDuration: 1000, stalledInterval: 1000 });
}

async function dieWorking(queue) {
  const child = fork(__filename, [version, url, prefix, 'work-and-die'], { stdio: 'inherit' });
  const signal = await new Promise(resolve => child.on('exit', (_, signal) => resolve(signal)));
  const client = await queue.client;
  return { signal, active: await client.lrange(`${prefix}:${QUEUE}:active`, 0, -1) };
}

async function main() {
  if (command === 'work-and-die') return workAndDie();
  const queue = new Queue(QUEUE, { connection: connection(), prefix });
  let output;
  switch (command) {
    case 'add':
      output = await add(queue);
      break;
    case 'produce':
      output = await produce(queue);
      break;
    case 'counts':
      output = await counts(queue);
      break;
    case 'pause':
      await queue.pause();
      output = { paused: true };
      break;
    case 'resume':
      await queue.resume();
      output = { paused: false };
      break;
    case 'die-working':
      output = await dieWorking(queue);
      break;
    default:
      throw new Error(`unknown command ${command}`);
  }
  await queue.close();
  process.stdout.write(JSON.stringify(output) + '\n');
}

main().catch(error => {
  process.stderr.write(`wildduck-queue.js: ${error.stack || error}\n`);
  process.exit(1);
});
