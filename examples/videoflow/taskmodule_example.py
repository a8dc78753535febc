'''
This example tests wrapping the task module node
around other nodes and running a flow with it.
'''

from asyncflow.compat.videoflow.core import Flow
from asyncflow.compat.videoflow.core.node import TaskModuleNode
from asyncflow.compat.videoflow.producers import IntProducer
from asyncflow.compat.videoflow.processors import IdentityProcessor, JoinerProcessor
from asyncflow.compat.videoflow.consumers import CommandlineConsumer

producer = IntProducer(0, 40, 0.05)
identity = IdentityProcessor(nb_tasks = 1)(producer)
identity1 = IdentityProcessor(nb_tasks = 1)(identity)
joined = JoinerProcessor(nb_tasks = 1)(identity, identity1)
task_module = TaskModuleNode(identity, joined)
printer = CommandlineConsumer()(task_module)
flow = Flow([producer], [printer])
flow.run()
flow.join()