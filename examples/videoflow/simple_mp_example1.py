from asyncflow.compat.videoflow.core import Flow
from asyncflow.compat.videoflow.producers import IntProducer
from asyncflow.compat.videoflow.processors import IdentityProcessor, JoinerProcessor
from asyncflow.compat.videoflow.consumers import CommandlineConsumer

producer = IntProducer(0, 40, 0.1)
identity = IdentityProcessor(nb_tasks = 5)(producer)
identity1 = IdentityProcessor(nb_tasks = 5)(identity)
joined = JoinerProcessor(nb_tasks = 5)(identity, identity1)
printer = CommandlineConsumer()(joined)
flow = Flow([producer], [printer])
flow.run()
flow.join()
