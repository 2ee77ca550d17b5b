"""BPMN processes on SpiffWorkflow: definitions, persisted instances, the task inbox, timers.

Public surface:

* :class:`WorkflowService` (``loom.workflow``): ``start``, ``complete``, ``claim``/``unclaim``/
  ``delegate``/``reassign``, ``retry``, ``cancel``, ``tick``, ``message``, ``inbox``, ``instance``;
* :func:`register_action` for plugins adding service-task actions; :data:`ACTIONS`;
* :func:`check_xml` / :func:`deploy_xml` for the designer (check and deploy a BPMN document).
"""
from engine.workflow.actions import ACTIONS, ActionContext, register_action
from engine.workflow.definitions import check_xml, deploy_xml
from engine.workflow.service import MAX_TREE_DEPTH, ProcessLimitExceeded, WorkflowService

__all__ = ["ACTIONS", "ActionContext", "register_action", "check_xml", "deploy_xml", "MAX_TREE_DEPTH",
           "ProcessLimitExceeded", "WorkflowService"]
