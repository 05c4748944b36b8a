import { once } from 'node:events';
import { connect } from 'node:net';
import t from 'tap';
import { AgentCheckServer, agentLine } from '../../src/cluster/agent-check.js';
import type { NodeEntry } from '../../src/cluster/node-registry.js';

// HAProxy's agent check: one line per connection, weight by load while ready, `drain` otherwise.

const entry = (load: number): NodeEntry => ({ id: 'n', address: null, liveStreams: 0, streamLimit: null, load, draining: false, updatedAt: '' });

t.test('the line: weight falls with load; full, draining or unregistered nodes drain', async (t) => {
  t.equal(agentLine(entry(0), { ready: true }), 'up ready 100%\n');
  t.equal(agentLine(entry(0.25), { ready: true }), 'up ready 75%\n');
  t.equal(agentLine(entry(1), { ready: true }), 'up ready 1%\n', 'never 0% while ready (0 would drain it)');
  t.equal(agentLine(entry(1), { ready: false }), 'drain\n');
});

t.test('the server answers each connection with the current line and closes', async (t) => {
  let line = 'up ready 100%\n';
  const server = new AgentCheckServer(() => line);
  t.teardown(() => server.close());
  const port = await server.listen('127.0.0.1', 0);
  const read = async (): Promise<string> => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    await once(socket, 'close');
    return text;
  };
  t.equal(await read(), 'up ready 100%\n');
  line = 'drain\n';
  t.equal(await read(), 'drain\n');
});
