'use strict';
const express = require('express');
const { rocketPublisher } = require('@rocketnest/express');

/** The HTTP side: POST /orders publishes `orders:created`; GET /charges lists what billing charged. */
function createApp({ transport, billing }) {
  const app = express();
  const publisher = rocketPublisher({ transport });
  app.use(express.json());
  app.use(publisher);
  app.post('/orders', async (req, res, next) => {
    try {
      const order = req.body;
      const sent = await req.rocket.send({
        topic: 'orders',
        tag: 'created',
        keys: [order.id],
        body: JSON.stringify(order),
      });
      res.status(201).json({ msgId: sent.msgId });
    } catch (error) {
      next(error);
    }
  });
  app.get('/charges', (_req, res) => res.json(billing.charged));
  return { app, publisher };
}

module.exports = { createApp };
