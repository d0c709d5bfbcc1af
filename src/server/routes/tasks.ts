import type { TaskService } from '../../pdp/task-service.js';
import type { TaskRegistrationV1 } from '../../wire/decision-v1.js';
import { parseTaskRegistration } from '../../wire/request-parsers.js';
import { errors, json } from '../openapi.js';
import { route, type Route } from '../route.js';

const idParameter = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };

/** Tasks are registered and completed by an orchestrator: the source of trusted task context. */
export function taskRoutes(tasks: TaskService): Route[] {
  return [
    route<TaskRegistrationV1>({
      method: 'POST',
      path: '/v1/tasks',
      roles: ['orchestrator'],
      body: { media: ['json'], parse: parseTaskRegistration },
      async handle({ caller, body, traceId }) {
        return { status: 201, json: await tasks.register(caller, body, traceId) };
      },
      openapi: {
        operationId: 'registerTask',
        summary: 'Register a task with its trusted context',
        requestBody: { required: true, content: json('TaskRegistrationV1') },
        responses: { '201': { description: 'registered', content: json('TaskV1') }, ...errors(409, 503) },
      },
    }),
    route({
      method: 'GET',
      path: '/v1/tasks/{id}',
      roles: ['orchestrator', 'auditor', 'admin'],
      async handle({ params }) {
        return { status: 200, json: await tasks.get(params['id'] ?? '') };
      },
      openapi: {
        operationId: 'getTask',
        summary: 'Read a task',
        parameters: [idParameter],
        responses: { '200': { description: 'the task', content: json('TaskV1') }, ...errors(404, 503) },
      },
    }),
    route({
      method: 'POST',
      path: '/v1/tasks/{id}/complete',
      roles: ['orchestrator'],
      async handle({ caller, params, traceId }) {
        return { status: 200, json: await tasks.complete(caller, params['id'] ?? '', traceId) };
      },
      openapi: {
        operationId: 'completeTask',
        summary: 'Complete a task; revokes every token issued for it',
        parameters: [idParameter],
        responses: { '200': { description: 'completed', content: json('TaskV1') }, ...errors(404, 409, 503) },
      },
    }),
  ];
}
