// The demo's single page, served by OrderPageController at `/`. It places orders over HTTP and
// follows `orders` and `payments` over the push channel (`/push`, client module at
// `/push/client.js`), showing each order's messages — with the broker's message ids — as they arrive.
import { TEST_CARDS } from '../contracts';
import { ORDER_PUSH_PATH } from './order-push.options';

export const ORDER_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>RocketNest demo: orders</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 52rem; padding: 0 1rem; color: #1d2330; }
  h1 { font-size: 1.4rem; margin-bottom: .2rem; }
  form { display: flex; gap: .8rem; align-items: end; flex-wrap: wrap; margin: 1rem 0; }
  label { display: flex; flex-direction: column; font-size: .85rem; gap: .2rem; }
  input, select, button { font: inherit; padding: .35rem .5rem; }
  button { cursor: pointer; }
  #connection { font-size: .85rem; color: #666; }
  #connection[data-state="live"] { color: #1a7f37; }
  #connection[data-state="error"] { color: #b42318; }
  .order { border: 1px solid #d0d7de; border-radius: 6px; padding: .6rem .9rem; margin: .8rem 0; }
  .order header { display: flex; justify-content: space-between; gap: 1rem; }
  .status { font-weight: 600; text-transform: uppercase; font-size: .8rem; padding: .1rem .45rem; border-radius: 4px; background: #eaeef2; }
  .order[data-status="paid"] .status { background: #dafbe1; color: #1a7f37; }
  .order[data-status="failed"] .status { background: #ffebe9; color: #b42318; }
  .order[data-status="cancelled"] .status { background: #fff8c5; color: #7d4e00; }
  ol { margin: .4rem 0 0; padding-left: 1.2rem; }
  li { font-size: .85rem; }
  code { font-size: .8rem; color: #57606a; }
</style>
</head>
<body>
<h1>RocketNest orders demo</h1>
<p>Place an order: the order service publishes <code>orders/created</code>, the payment service charges the
card and answers with a transactional <code>payments</code> message, and an unpaid order is cancelled by a delayed
<code>orders/timeout</code>. Outside systems can add notes (<code>order-notes</code>) through the Express
endpoint <code>/external</code>. Every message below arrives over the push channel, with the broker's message id.</p>
<form id="place">
  <label>Amount (cents) <input name="amountCents" type="number" value="1999" min="1" required></label>
  <label>Card
    <select name="card">
      <option value="${TEST_CARDS.APPROVED}">4242 4242 4242 4242: approved</option>
      <option value="${TEST_CARDS.DECLINED}">4000 0000 0000 0002: declined</option>
      <option value="${TEST_CARDS.NO_ANSWER}">4000 0000 0000 0119: no answer, times out</option>
      <option value="5555555555554444">5555 5555 5555 4444: random (failure rate)</option>
    </select>
  </label>
  <button type="submit">Place order</button>
</form>
<p id="connection" data-state="connecting">push channel: connecting…</p>
<section id="orders"></section>
<script type="module">
  import { PushClient } from '${ORDER_PUSH_PATH}/client.js';

  const MAX_UNKNOWN_ORDERS = 200;
  const STATUS_TAGS = new Set(['paid', 'failed', 'cancelled']);
  const orders = new Map(); // order id -> { article, list }
  const early = new Map(); // order id -> messages that came before the POST answered
  const connection = document.getElementById('connection');

  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const client = new PushClient(scheme + '://' + location.host + '${ORDER_PUSH_PATH}');
  client.onError((error) => {
    connection.dataset.state = 'error';
    connection.textContent = 'push channel: ' + error.code + ' ' + error.message;
  });
  const subscriptions = ['orders', 'payments', 'order-notes'].map((topic) =>
    client.subscribe(topic, { from: 'latest' }, onMessage),
  );
  const live = setInterval(() => {
    if (subscriptions.every((s) => s.position() !== undefined)) {
      clearInterval(live);
      connection.dataset.state = 'live';
      connection.textContent = 'push channel: live (orders, payments, order-notes)';
    }
  }, 50);

  function onMessage(message) {
    let body;
    try {
      body = JSON.parse(typeof message.body === 'string' ? message.body : '');
    } catch {
      return;
    }
    const orderId = body && body.orderId;
    if (typeof orderId !== 'string') return;
    const entry = { topic: message.topic, tag: message.tag, msgId: message.msgId, atMs: message.storeTimestampMs, body };
    const order = orders.get(orderId);
    if (order) return show(order, entry);
    if (!early.has(orderId)) {
      if (early.size >= MAX_UNKNOWN_ORDERS) early.delete(early.keys().next().value);
      early.set(orderId, []);
    }
    early.get(orderId).push(entry);
  }

  function show(order, entry) {
    const li = document.createElement('li');
    li.dataset.topic = entry.topic;
    li.dataset.tag = entry.tag ?? '';
    li.dataset.msgId = entry.msgId;
    const what = entry.topic + '/' + (entry.tag ?? '*');
    const said = entry.body.reason ?? entry.body.text;
    const extra = said ? ' (' + said + ')' : '';
    li.append(new Date(entry.atMs).toLocaleTimeString() + ' ' + what + extra + ' ');
    const id = document.createElement('code');
    id.textContent = entry.msgId;
    li.append(id);
    order.list.append(li);
    if (entry.topic === 'orders' && STATUS_TAGS.has(entry.tag)) setStatus(order, entry.tag);
  }

  function setStatus(order, status) {
    order.article.dataset.status = status;
    order.article.querySelector('.status').textContent = status;
  }

  function track(created) {
    const article = document.createElement('article');
    article.className = 'order';
    article.dataset.orderId = created.id;
    article.innerHTML = '<header><strong></strong><span class="status"></span></header><ol></ol>';
    article.querySelector('strong').textContent =
      created.id + ': ' + (created.amountCents / 100).toFixed(2) + ' on card …' + created.cardLast4;
    document.getElementById('orders').prepend(article);
    const order = { article, list: article.querySelector('ol') };
    setStatus(order, created.status);
    orders.set(created.id, order);
    for (const entry of early.get(created.id) ?? []) show(order, entry);
    early.delete(created.id);
  }

  document.getElementById('place').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const response = await fetch('/orders', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ amountCents: Number(form.get('amountCents')), card: form.get('card') }),
    });
    const answer = await response.json();
    if (!response.ok) return alert(answer.message ?? response.statusText);
    track(answer);
  });
</script>
</body>
</html>
`;
