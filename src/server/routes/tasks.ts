import { Router } from 'express';
import type { TaskService } from '../../pdp/task-service.js';
import { taskRegistrationSchema, type TaskRegistrationV1 } from '../../wire/decision-v1.js';
import { callerOf, requireRole } from '../authenticate.js';
import { bodyValidator } from '../validate-body.js';

const parseTaskRegistration = bodyValidator<TaskRegistrationV1>(taskRegistrationSchema);

/** Tasks are registered and completed by an orchestrator: the source of trusted task context. */
export function taskRoutes(tasks: TaskService): Router {
  const router = Router();
  router.post('/v1/tasks', requireRole('orchestrator'), async (req, res) => {
    const task = await tasks.register(callerOf(req), parseTaskRegistration(req.body), req.traceId ?? null);
    res.status(201).json(task);
  });
  router.get('/v1/tasks/:id', requireRole('orchestrator', 'auditor', 'admin'), async (req, res) => {
    res.json(await tasks.get(String(req.params['id'])));
  });
  router.post('/v1/tasks/:id/complete', requireRole('orchestrator'), async (req, res) => {
    res.json(await tasks.complete(callerOf(req), String(req.params['id']), req.traceId ?? null));
  });
  return router;
}
