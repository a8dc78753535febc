from asyncflow.compat.videoflow.core import Flow
from asyncflow.compat.videoflow.producers import IntProducer
from asyncflow.compat.videoflow.processors.aggregators import SumAggregator
from asyncflow.compat.videoflow.consumers import CommandlineConsumer

producer = IntProducer(0, 40, 0.01)
sum_agg = SumAggregator()(producer)
printer = CommandlineConsumer()(sum_agg)
flow = Flow([producer], [printer])
flow.run()
flow.join()